package sshcli

import "github.com/planetlab/pl/internal/slicedir"

// The directory of slivers' ssh endpoints lives in slicedir (the portal
// uses it too); these names keep the client's code short.
type (
	Node              = slicedir.Node
	Directory         = slicedir.Directory
	RegistryDirectory = slicedir.RegistryDirectory
)

// DefaultPort and PortTag: see slicedir.
const (
	DefaultPort = slicedir.DefaultPort
	PortTag     = slicedir.PortTag
)
