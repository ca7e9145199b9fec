package agent

import (
	"math"
	"sort"

	"github.com/planetlab/pl/internal/core/tags"
)

// CPU arbitration: turning cpu_share, cpu_pct and cpu_cap_pct of all slivers
// into cgroup weights (cpu.shares) and caps (CFS quota).
//
// The Linux CFS scheduler divides a busy CPU among runnable cgroups in
// proportion to their weights and idles nobody while there is work: it is
// work-conserving. A guarantee of g% is therefore a weight that is g% of the
// sum of the weights of the competing slivers; caps are only needed when the
// kernel's weight range (2..262144) cannot express the ratios.
//
// Algorithm (ArbitrateCPU), over the enabled slivers only (suspended ones
// are frozen and take no CPU):
//
//  1. Weight of a sliver: w = cpu_share * 1024, at least 2 (cpu_share 0).
//  2. If no sliver has a cpu_pct, the shares are the weights. Done.
//  3. Let G = the sum of cpu_pct. If G > MaxReservedPct (90), every
//     guarantee is scaled by 90/G so that the host and the best-effort
//     slivers keep at least 10%.
//  4. Target fractions of the CPU under full contention: a reserved sliver
//     gets g/100 (its cpu_share is not used); the best-effort slivers share
//     the rest, P = 1 - G/100, in proportion to their weights. With no
//     best-effort sliver the reserved ones split everything in proportion to
//     their guarantees (each still gets at least g).
//  5. Shares = fraction * 1024 * n (n = number of enabled slivers, so equal
//     fractions give the familiar 1024), scaled down so the largest is at
//     most 262144, rounded up for reserved and down for best-effort
//     slivers, then clamped to at least 2.
//  6. If clamping at 2 made some reserved sliver's fraction drop below its
//     guarantee, every best-effort sliver also gets a cap: its share of P of
//     all the node's CPUs (in % of one CPU, at least 1%). This is the only
//     case where a guarantee costs others idle CPU.
//
// An explicit cpu_cap_pct always applies; with a computed cap the smaller
// wins.

// MaxReservedPct is the most of the node's CPU that guarantees may take.
const MaxReservedPct = 90

// CPURequest is one sliver's CPU tags.
type CPURequest struct {
	Name     string
	Share    int // cpu_share
	Pct      int // cpu_pct
	CapPct   int // cpu_cap_pct; 0 = none
	Disabled bool
}

// CPUAlloc is what the kernel is told for one sliver.
type CPUAlloc struct {
	Shares uint64
	CapPct int // 0 = uncapped
}

const (
	minShares = 2
	maxShares = tags.MaxKernelShares
)

func weight(share int) float64 { return math.Max(minShares, float64(share)*tags.SharesPerCPUShare) }

// ArbitrateCPU computes every sliver's CPU weight and cap; ncpu is the
// number of CPUs of the node. It is a pure function of its arguments.
func ArbitrateCPU(reqs []CPURequest, ncpu int) map[string]CPUAlloc {
	if ncpu < 1 {
		ncpu = 1
	}
	out := make(map[string]CPUAlloc, len(reqs))
	var active []CPURequest
	G := 0.0
	for _, r := range reqs {
		out[r.Name] = CPUAlloc{Shares: uint64(weight(r.Share)), CapPct: r.CapPct}
		if !r.Disabled {
			active = append(active, r)
			G += float64(r.Pct)
		}
	}
	if G == 0 {
		return out
	}
	sort.Slice(active, func(i, j int) bool { return active[i].Name < active[j].Name })
	scale := 1.0
	if G > MaxReservedPct {
		scale = MaxReservedPct / G
		G = MaxReservedPct
	}
	B := 0.0 // best-effort weight
	for _, r := range active {
		if r.Pct == 0 {
			B += weight(r.Share)
		}
	}
	P := 1 - G/100
	frac := make([]float64, len(active))
	maxf := 0.0
	for i, r := range active {
		switch {
		case r.Pct > 0 && B == 0:
			frac[i] = float64(r.Pct) * scale / G
		case r.Pct > 0:
			frac[i] = float64(r.Pct) * scale / 100
		default:
			frac[i] = P * weight(r.Share) / B
		}
		maxf = math.Max(maxf, frac[i])
	}
	K := 1024 * float64(len(active))
	if maxf*K > maxShares {
		K = maxShares / maxf
	}
	shares := make([]float64, len(active))
	sum := 0.0
	for i, r := range active {
		// Round in the guarantees' favour, so only the clamp at 2 can break one.
		v := math.Floor(frac[i] * K)
		if r.Pct > 0 {
			v = math.Ceil(frac[i] * K)
		}
		shares[i] = math.Max(minShares, math.Min(maxShares, v))
		sum += shares[i]
	}
	violated := false
	for i, r := range active {
		if r.Pct > 0 && B > 0 && shares[i]/sum < float64(r.Pct)*scale/100*(1-1e-9) {
			violated = true
		}
	}
	for i, r := range active {
		a := CPUAlloc{Shares: uint64(shares[i]), CapPct: r.CapPct}
		if violated && r.Pct == 0 {
			c := int(math.Max(1, math.Floor(P*float64(ncpu)*100*weight(r.Share)/B)))
			if a.CapPct == 0 || c < a.CapPct {
				a.CapPct = c
			}
		}
		out[r.Name] = a
	}
	return out
}
