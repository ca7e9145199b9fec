package plcapi

// Writable fields of each object as the original declares them
// (PLC/<Objects>.py "fields"): these types drive type checking of the
// Add*/Update* structs. Members not listed (exposed tags, unknown keys)
// are not type-checked here; the service accepts tags and rejects unknown
// keys, as the original's Add/Update methods do.

var (
	tIDOrName    = mixed(tInt, tStr)
	tIDsOrNames  = arrayOf(mixed(tInt, tStr))
	tReturnField = null(arrayOf(tStr))
	tTime        = mixed(tInt, tStr) // lease times: int or a date string
)

// filterT is the filter parameter of Get*: nil, a list of ids and names,
// (for sites, persons, nodes, slices) a bare id or name, or a dict filter.
func filterT(bare bool) *typ {
	alts := []*typ{tIDsOrNames}
	if bare {
		alts = append(alts, tStr, tInt)
	}
	alts = append(alts, structOf(nil))
	return null(mixed(alts...))
}

var siteFields = map[string]*typ{
	"name":              str(254),
	"abbreviated_name":  str(50),
	"login_base":        str(32),
	"is_public":         tBool,
	"enabled":           tBool,
	"latitude":          null(tDouble),
	"longitude":         null(tDouble),
	"url":               null(str(254)),
	"max_slices":        tInt,
	"max_slivers":       tInt,
	"ext_consortium_id": null(tInt),
}

var peerFields = map[string]*typ{
	"peername":   str(254),
	"peer_url":   str(254),
	"key":        str(1024),
	"cacert":     null(str(8192)),
	"shortname":  null(str(32)),
	"hrn_root":   null(str(64)),
	"max_slices": tInt,
}

var addressFields = map[string]*typ{
	"line1":      str(254),
	"line2":      null(str(254)),
	"line3":      null(str(254)),
	"city":       str(254),
	"state":      str(254),
	"postalcode": str(64),
	"country":    str(128),
}

var addressTypeFields = map[string]*typ{
	"name":        str(20),
	"description": null(str(254)),
}

var personFields = map[string]*typ{
	"first_name": str(128),
	"last_name":  str(128),
	"title":      null(str(128)),
	"email":      str(254),
	"phone":      null(str(64)),
	"url":        null(str(254)),
	"bio":        null(str(254)),
	"enabled":    tBool,
	"password":   str(254),
}

var keyFields = map[string]*typ{
	"key_type": str(20),
	"key":      str(4096),
}

var nodeFields = map[string]*typ{
	"hostname":   str(255),
	"node_type":  str(20),
	"boot_state": str(20),
	"model":      null(str(255)),
	"version":    null(str(64)),
	"key":        null(str(256)),
	"session":    null(str(256)),
	"boot_nonce": null(str(128)),
	"site_id":    tInt,
	"run_level":  null(str(20)),
}

var interfaceFields = map[string]*typ{
	"is_primary": tBool,
	"type":       str(20),
	"method":     str(20),
	"ip":         null(str(254)),
	"mac":        null(str(17)),
	"gateway":    null(str(254)),
	"network":    null(str(254)),
	"broadcast":  null(str(254)),
	"netmask":    null(str(254)),
	"dns1":       null(str(254)),
	"dns2":       null(str(254)),
	"bwlimit":    null(tInt),
	"hostname":   null(str(256)),
}

var tagTypeFields = map[string]*typ{
	"tagname":     strRange(1, 100),
	"description": null(str(254)),
	"category":    null(str(64)),
}

var nodeGroupFields = map[string]*typ{
	"groupname": str(50),
	"value":     str(254),
}

var sliceFields = map[string]*typ{
	"name":          str(64),
	"instantiation": str(30),
	"url":           null(str(254)),
	"description":   null(str(2048)),
	"max_nodes":     tInt,
	"expires":       tInt,
}

var pcuFields = map[string]*typ{
	"hostname": null(str(254)),
	"ip":       str(254),
	"protocol": null(str(16)),
	"username": null(str(254)),
	"password": null(str(254)),
	"notes":    null(str(254)),
	"model":    null(str(32)),
}

var confFileFields = map[string]*typ{
	"enabled":           tBool,
	"source":            str(255),
	"dest":              str(255),
	"file_permissions":  str(20),
	"file_owner":        str(50),
	"file_group":        str(50),
	"preinstall_cmd":    null(str(1024)),
	"postinstall_cmd":   null(str(1024)),
	"error_cmd":         null(str(1024)),
	"ignore_cmd_errors": tBool,
	"always_update":     tBool,
}

var initScriptFields = map[string]*typ{
	"name":    str(254),
	"enabled": tBool,
	"script":  str(65535),
}

var leaseUpdateFields = map[string]*typ{
	"t_from":   tTime,
	"t_until":  tTime,
	"duration": tInt,
}

// tagValue is the value of a tag (always a string in the original).
var tagValue = str(65535)
