// Package geniam is PLC's GENI Aggregate Manager API v3 aggregate
// (docs/geni.md): XML-RPC over HTTPS with client certificates, SFA
// credentials verified completely (package sfa), RSpec v3 (package
// geni/rspec), and GENI slices mapped onto PlanetLab slices: those of
// this PLC's own slice authority, urn:publicid:IDN+<host>+slice+<name>,
// onto the slice of that name; those of other trusted authorities onto
// local stand-ins (a site per authority, a slice, a person per user) that
// the service makes on first use (Persons.GENIForeignSlice). Request links
// become statements of the slice's vlinks tag (links.go).
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
// Allocated slivers are promises (cheap, minutes long, as the API
// intends) kept in the store with the client_ids and restarts in
// progress (Persons.GENISlivers), so they survive a restart of PLC.
// Provisioned slivers are the slice's nodes in the registry and share the
// slice's expiry.
// Operational state of a provisioned sliver, from what its node reports
// (the planet table, Config.Planet): geni_configuring until the node
// reports the sliver, geni_ready while it reports it running, geni_failed
// (with the node's error) when it reports an error, geni_notready when
// it reports it otherwise, when the node is not in boot state, or when
// the sliver is stopped (the enabled slice tag scoped to the node, which
// geni_stop sets to 0 and geni_start removes). geni_restart is geni_stop
// and then geni_start: geni_stopping until the node reports the sliver
// not running or Config.RestartHold has passed. Without Config.Planet,
// geni_ready stands for "PLC wants it and the node is in boot state".
package geniam
