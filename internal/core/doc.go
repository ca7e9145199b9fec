// Package core holds PlanetLab's nouns shared by every part of the system:
// domain error codes, the generic object record used by the PLC registry,
// and NodeState, the desired state of one node (the content of PLCAPI's
// GetSlivers) that PLC computes and every node manager reconciles towards.
//
// Packages below core never import transports or Linux code; everything
// else may import core.
package core
