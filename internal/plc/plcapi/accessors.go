package plcapi

import (
	"github.com/planetlab/pl/internal/core"
)

// Accessors (PLC/Accessors): Get<Class><Tag>(auth, id_or_name) returns the
// tag's value (a string, or nil when unset) and Set<Class><Tag>(auth,
// id_or_name, value) sets it (nil deletes it) and returns the value. They
// map onto Get with the tag name as a return field and Update with the tag
// name as a pseudo-field, so tag-type roles and ownership are the
// service's, as for any tag write.

type accessorSet struct {
	class   core.Class
	cls     string // PLCAPI class name
	refName string
	tags    [][2]string // method suffix, tag name
}

var accessorSets = []accessorSet{
	{core.Node, "Node", "node_id_or_hostname", [][2]string{
		{"Arch", "arch"}, {"Pldistro", "pldistro"}, {"Fcdistro", "fcdistro"}, {"Virt", "virt"},
		{"Deployment", "deployment"}, {"Extensions", "extensions"}, {"Hrn", "hrn"},
		{"PlainBootstrapfs", "plain-bootstrapfs"}, {"Serial", "serial"}, {"Cramfs", "cramfs"},
		{"Kvariant", "kvariant"}, {"Kargs", "kargs"}, {"NoHangcheck", "no-hangcheck"},
	}},
	{core.Slice, "Slice", "slice_id_or_name", [][2]string{
		{"Vref", "vref"}, {"Initscript", "initscript"}, {"InitscriptCode", "initscript_code"},
		{"Arch", "arch"}, {"Pldistro", "pldistro"}, {"Fcdistro", "fcdistro"}, {"Hrn", "hrn"},
		{"SfaCreated", "sfa_created"}, {"OmfControl", "omf_control"}, {"SliverHMAC", "enable_hmac"},
		{"Hmac", "hmac"}, {"SshKey", "ssh_key"}, {"IPv6Address", "ipv6_address"},
	}},
	{core.Site, "Site", "site_id_or_login_base", [][2]string{
		{"Hrn", "hrn"}, {"SfaCreated", "sfa_created"}, {"DisabledRegistration", "disabled_registration"},
	}},
	{core.Person, "Person", "person_id_or_email", [][2]string{
		{"Hrn", "hrn"}, {"SfaCreated", "sfa_created"}, {"Columnconf", "columnconf"},
		{"Showconf", "showconf"}, {"Advanced", "advanced"},
	}},
	{core.Interface, "Interface", "interface_id", [][2]string{
		{"Ifname", "ifname"}, {"Driver", "driver"}, {"Alias", "alias"}, {"Backdoor", "backdoor"},
		{"SliversIPv6Prefix", "sliversipv6prefix"}, {"Mode", "mode"}, {"Essid", "essid"},
		{"Nw", "nw"}, {"Freq", "freq"}, {"Channel", "channel"}, {"Sens", "sens"}, {"Rate", "rate"},
		{"Key", "key"}, {"Key1", "key1"}, {"Key2", "key2"}, {"Key3", "key3"}, {"Key4", "key4"},
		{"SecurityMode", "securitymode"}, {"Iwconfig", "iwconfig"}, {"Iwpriv", "iwpriv"},
	}},
}

func accessorMethods() []*method {
	var ms []*method
	for _, s := range accessorSets {
		refT := tIDOrName
		if s.class == core.Interface {
			refT = tInt
		}
		for _, t := range s.tags {
			tag := t[1]
			ms = append(ms, &method{
				name: "Get" + s.cls + t[0], roles: roles(rA, rP, rT, rU, rN), returns: null(tStr),
				params: []param{p(s.refName, refT)},
				help:   "Returns the value of tag '" + tag + "' of the " + string(s.class) + ", or nil when unset.",
				fn: func(x *call, a []any) (any, error) {
					id, err := x.resolve(s.class, a[0])
					if err != nil {
						return nil, err
					}
					recs, err := x.reg().Get(x.ctx, x.caller, s.class, &core.Filter{IsList: true, IDs: []int64{id}}, []string{tag})
					if err != nil {
						return nil, err
					}
					if len(recs) == 0 {
						return nil, nil
					}
					return recs[0][tag], nil
				},
			}, &method{
				name: "Set" + s.cls + t[0], roles: roles(rA, rP, rT, rU, rN), returns: null(tStr),
				params: []param{p(s.refName, refT), p("value", null(tagValue))},
				help:   "Sets tag '" + tag + "' of the " + string(s.class) + " (nil deletes it) and returns the value.",
				fn: func(x *call, a []any) (any, error) {
					id, err := x.resolve(s.class, a[0])
					if err != nil {
						return nil, err
					}
					if err := x.reg().Update(x.ctx, x.caller, s.class, id, core.Record{tag: a[1]}); err != nil {
						return nil, err
					}
					return a[1], nil
				},
			})
		}
	}
	return ms
}
