package dev

import (
	"github.com/spf13/cobra"
)

func benchPlanetCmd() *cobra.Command {
	var f planetFlags
	var reps int
	var trace bool
	c := &cobra.Command{
		Use:   "planet",
		Short: "Time from adding a slice to every node of a pl dev planet until its slivers run and accept ssh",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			cfg.NoDemo = true
			return BenchPlanet(cmd.Context(), cfg, reps, trace, cmd.OutOrStdout())
		},
	}
	f.add(c, 16)
	c.Flags().IntVar(&reps, "reps", 20, "repetitions")
	c.Flags().BoolVar(&trace, "trace", false, "print each repetition's phases (PLC call, notification and fetch, planning, network and runc, init to first answer), from the node managers' debug logs")
	return c
}
