// Package geniam is PLC's GENI Aggregate Manager API v3 aggregate
// (docs/geni.md): XML-RPC over HTTPS with client certificates, SFA
// credentials verified completely (package sfa), RSpec v3 (package
// geni/rspec), and GENI slices mapped onto the PlanetLab slices of this
// PLC's own slice authority, urn:publicid:IDN+<host>+slice+<name>.
//
// It is a transport over the service contract: every change is a
// core.Registry call made as the person the credential's chain starts
// from (the slice authority issued the root credential to them), under
// the same policy and expiry rules as their other requests.
//
// A sliver is one node of a slice:
//
//	             Allocate                Provision (node added to the slice)
//	unallocated ---------> allocated ---------------------------> provisioned
//	     ^                     |  (not provisioned within            |
//	     |                     |   its expiry: dropped)              |
//	     +---------------------+-------------- Delete ---------------+
//
// Allocated slivers are promises kept in memory (cheap, minutes long, as
// the API intends; a restart of PLC forgets them). Provisioned slivers
// are the slice's nodes in the registry and share the slice's expiry.
// Operational state of a provisioned sliver: geni_ready while its node
// is in boot state and the sliver is not stopped (the enabled slice tag
// scoped to the node, which geni_stop sets to 0 and geni_start removes),
// geni_notready otherwise.
package geniam
