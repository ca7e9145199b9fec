package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core/tags"
)

// migrations are applied in order and recorded in schema_migrations. The
// SQL is shared by both dialects; {{ID}} expands to an auto-increment
// primary key whose values are never reused (SQLite AUTOINCREMENT,
// PostgreSQL identity). Booleans are INTEGER 0/1 and times BIGINT UNIX
// seconds in both dialects.
var migrations = []string{
	// 1: the registry.
	`
CREATE TABLE plc_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE roles (role_id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE boot_states (boot_state TEXT PRIMARY KEY);
CREATE TABLE node_types (node_type TEXT PRIMARY KEY);
CREATE TABLE network_types (type TEXT PRIMARY KEY);
CREATE TABLE network_methods (method TEXT PRIMARY KEY);
CREATE TABLE slice_instantiations (instantiation TEXT PRIMARY KEY);
CREATE TABLE key_types (key_type TEXT PRIMARY KEY);

CREATE TABLE sites (
	site_id {{ID}},
	login_base TEXT NOT NULL,
	name TEXT NOT NULL,
	abbreviated_name TEXT NOT NULL,
	url TEXT,
	is_public INTEGER NOT NULL DEFAULT 1,
	enabled INTEGER NOT NULL DEFAULT 1,
	latitude DOUBLE PRECISION,
	longitude DOUBLE PRECISION,
	max_slices BIGINT NOT NULL DEFAULT 0,
	max_slivers BIGINT NOT NULL DEFAULT 1000,
	ext_consortium_id BIGINT,
	date_created BIGINT NOT NULL,
	last_updated BIGINT NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX sites_login_base ON sites (login_base) WHERE deleted = 0;

CREATE TABLE address_types (address_type_id {{ID}}, name TEXT NOT NULL UNIQUE, description TEXT);
CREATE TABLE addresses (
	address_id {{ID}},
	site_id BIGINT NOT NULL REFERENCES sites (site_id),
	line1 TEXT, line2 TEXT, line3 TEXT, city TEXT, state TEXT, postalcode TEXT, country TEXT
);
CREATE TABLE address_address_type (
	address_id BIGINT NOT NULL REFERENCES addresses (address_id) ON DELETE CASCADE,
	address_type_id BIGINT NOT NULL REFERENCES address_types (address_type_id) ON DELETE CASCADE,
	PRIMARY KEY (address_id, address_type_id)
);

CREATE TABLE persons (
	person_id {{ID}},
	email TEXT NOT NULL,
	first_name TEXT NOT NULL,
	last_name TEXT NOT NULL,
	title TEXT, phone TEXT, url TEXT, bio TEXT,
	enabled INTEGER NOT NULL DEFAULT 0,
	password TEXT,
	verification_key TEXT,
	verification_expires BIGINT,
	date_created BIGINT NOT NULL,
	last_updated BIGINT NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX persons_email ON persons (email) WHERE deleted = 0;
CREATE TABLE person_site (
	person_id BIGINT NOT NULL REFERENCES persons (person_id),
	site_id BIGINT NOT NULL REFERENCES sites (site_id),
	is_primary INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (person_id, site_id)
);
CREATE INDEX person_site_site ON person_site (site_id);
CREATE TABLE person_role (
	person_id BIGINT NOT NULL REFERENCES persons (person_id),
	role_id BIGINT NOT NULL REFERENCES roles (role_id) ON DELETE CASCADE,
	PRIMARY KEY (person_id, role_id)
);
CREATE TABLE keys (
	key_id {{ID}},
	person_id BIGINT NOT NULL REFERENCES persons (person_id),
	key_type TEXT NOT NULL REFERENCES key_types (key_type),
	key TEXT NOT NULL,
	material TEXT NOT NULL,
	is_blacklisted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX keys_person ON keys (person_id);
CREATE INDEX keys_material ON keys (material);

CREATE TABLE nodes (
	node_id {{ID}},
	site_id BIGINT NOT NULL REFERENCES sites (site_id),
	hostname TEXT NOT NULL,
	node_type TEXT NOT NULL DEFAULT 'regular' REFERENCES node_types (node_type),
	boot_state TEXT NOT NULL DEFAULT 'reinstall' REFERENCES boot_states (boot_state),
	run_level TEXT,
	model TEXT,
	version TEXT,
	ssh_rsa_key TEXT,
	boot_nonce TEXT,
	key TEXT,
	session TEXT,
	verified INTEGER NOT NULL DEFAULT 0,
	date_created BIGINT NOT NULL,
	last_updated BIGINT NOT NULL,
	last_contact BIGINT,
	last_boot BIGINT,
	last_download BIGINT,
	last_pcu_reboot BIGINT,
	last_pcu_confirmation BIGINT,
	join_secret TEXT,
	join_expires BIGINT,
	sliver_errors TEXT,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX nodes_hostname ON nodes (hostname) WHERE deleted = 0;
CREATE INDEX nodes_site ON nodes (site_id);

CREATE TABLE interfaces (
	interface_id {{ID}},
	node_id BIGINT NOT NULL REFERENCES nodes (node_id),
	is_primary INTEGER NOT NULL DEFAULT 0,
	type TEXT NOT NULL REFERENCES network_types (type),
	method TEXT NOT NULL REFERENCES network_methods (method),
	ip TEXT, mac TEXT, gateway TEXT, network TEXT, broadcast TEXT, netmask TEXT, dns1 TEXT, dns2 TEXT,
	bwlimit BIGINT,
	hostname TEXT,
	last_updated BIGINT NOT NULL
);
CREATE INDEX interfaces_node ON interfaces (node_id);

CREATE TABLE tag_types (
	tag_type_id {{ID}},
	tagname TEXT NOT NULL UNIQUE,
	description TEXT,
	category TEXT NOT NULL DEFAULT 'general'
);
CREATE TABLE tag_type_role (
	tag_type_id BIGINT NOT NULL REFERENCES tag_types (tag_type_id) ON DELETE CASCADE,
	role_id BIGINT NOT NULL REFERENCES roles (role_id) ON DELETE CASCADE,
	PRIMARY KEY (tag_type_id, role_id)
);
CREATE TABLE site_tags (
	site_tag_id {{ID}},
	site_id BIGINT NOT NULL REFERENCES sites (site_id),
	tag_type_id BIGINT NOT NULL REFERENCES tag_types (tag_type_id) ON DELETE CASCADE,
	value TEXT NOT NULL,
	UNIQUE (site_id, tag_type_id)
);
CREATE TABLE person_tags (
	person_tag_id {{ID}},
	person_id BIGINT NOT NULL REFERENCES persons (person_id),
	tag_type_id BIGINT NOT NULL REFERENCES tag_types (tag_type_id) ON DELETE CASCADE,
	value TEXT NOT NULL,
	UNIQUE (person_id, tag_type_id)
);
CREATE TABLE node_tags (
	node_tag_id {{ID}},
	node_id BIGINT NOT NULL REFERENCES nodes (node_id),
	tag_type_id BIGINT NOT NULL REFERENCES tag_types (tag_type_id) ON DELETE CASCADE,
	value TEXT NOT NULL,
	UNIQUE (node_id, tag_type_id)
);
CREATE INDEX node_tags_type ON node_tags (tag_type_id, value);
CREATE TABLE interface_tags (
	interface_tag_id {{ID}},
	interface_id BIGINT NOT NULL REFERENCES interfaces (interface_id) ON DELETE CASCADE,
	tag_type_id BIGINT NOT NULL REFERENCES tag_types (tag_type_id) ON DELETE CASCADE,
	value TEXT NOT NULL,
	UNIQUE (interface_id, tag_type_id)
);
CREATE TABLE ilinks (
	ilink_id {{ID}},
	tag_type_id BIGINT NOT NULL REFERENCES tag_types (tag_type_id) ON DELETE CASCADE,
	src_interface_id BIGINT NOT NULL REFERENCES interfaces (interface_id) ON DELETE CASCADE,
	dst_interface_id BIGINT NOT NULL REFERENCES interfaces (interface_id) ON DELETE CASCADE,
	value TEXT,
	UNIQUE (tag_type_id, src_interface_id, dst_interface_id)
);

CREATE TABLE nodegroups (
	nodegroup_id {{ID}},
	groupname TEXT NOT NULL UNIQUE,
	tag_type_id BIGINT NOT NULL REFERENCES tag_types (tag_type_id),
	value TEXT NOT NULL
);

CREATE TABLE slices (
	slice_id {{ID}},
	site_id BIGINT NOT NULL REFERENCES sites (site_id),
	name TEXT NOT NULL,
	instantiation TEXT NOT NULL DEFAULT 'plc-instantiated' REFERENCES slice_instantiations (instantiation),
	url TEXT,
	description TEXT,
	max_nodes BIGINT NOT NULL DEFAULT 100,
	creator_person_id BIGINT,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX slices_name ON slices (name) WHERE deleted = 0;
CREATE INDEX slices_site ON slices (site_id);
CREATE TABLE slice_node (
	slice_id BIGINT NOT NULL REFERENCES slices (slice_id),
	node_id BIGINT NOT NULL REFERENCES nodes (node_id),
	PRIMARY KEY (slice_id, node_id)
);
CREATE INDEX slice_node_node ON slice_node (node_id);
CREATE TABLE slice_node_whitelist (
	slice_id BIGINT NOT NULL REFERENCES slices (slice_id),
	node_id BIGINT NOT NULL REFERENCES nodes (node_id),
	PRIMARY KEY (slice_id, node_id)
);
CREATE TABLE slice_person (
	slice_id BIGINT NOT NULL REFERENCES slices (slice_id),
	person_id BIGINT NOT NULL REFERENCES persons (person_id),
	PRIMARY KEY (slice_id, person_id)
);
CREATE INDEX slice_person_person ON slice_person (person_id);
CREATE TABLE slice_tags (
	slice_tag_id {{ID}},
	slice_id BIGINT NOT NULL REFERENCES slices (slice_id),
	tag_type_id BIGINT NOT NULL REFERENCES tag_types (tag_type_id) ON DELETE CASCADE,
	value TEXT NOT NULL,
	node_id BIGINT REFERENCES nodes (node_id),
	nodegroup_id BIGINT REFERENCES nodegroups (nodegroup_id) ON DELETE CASCADE
);
CREATE INDEX slice_tags_slice ON slice_tags (slice_id);

CREATE TABLE pcus (
	pcu_id {{ID}},
	site_id BIGINT NOT NULL REFERENCES sites (site_id),
	hostname TEXT,
	ip TEXT NOT NULL,
	protocol TEXT, username TEXT, password TEXT, notes TEXT, model TEXT,
	last_updated BIGINT NOT NULL
);
CREATE TABLE pcu_node (
	pcu_id BIGINT NOT NULL REFERENCES pcus (pcu_id) ON DELETE CASCADE,
	node_id BIGINT NOT NULL REFERENCES nodes (node_id),
	port BIGINT NOT NULL,
	PRIMARY KEY (pcu_id, node_id),
	UNIQUE (pcu_id, port)
);

CREATE TABLE conf_files (
	conf_file_id {{ID}},
	enabled INTEGER NOT NULL DEFAULT 1,
	source TEXT NOT NULL,
	dest TEXT NOT NULL,
	file_permissions TEXT NOT NULL DEFAULT '0644',
	file_owner TEXT NOT NULL DEFAULT 'root',
	file_group TEXT NOT NULL DEFAULT 'root',
	preinstall_cmd TEXT, postinstall_cmd TEXT, error_cmd TEXT,
	ignore_cmd_errors INTEGER NOT NULL DEFAULT 0,
	always_update INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE conf_file_node (
	conf_file_id BIGINT NOT NULL REFERENCES conf_files (conf_file_id) ON DELETE CASCADE,
	node_id BIGINT NOT NULL REFERENCES nodes (node_id),
	PRIMARY KEY (conf_file_id, node_id)
);
CREATE TABLE conf_file_nodegroup (
	conf_file_id BIGINT NOT NULL REFERENCES conf_files (conf_file_id) ON DELETE CASCADE,
	nodegroup_id BIGINT NOT NULL REFERENCES nodegroups (nodegroup_id) ON DELETE CASCADE,
	PRIMARY KEY (conf_file_id, nodegroup_id)
);

CREATE TABLE initscripts (
	initscript_id {{ID}},
	name TEXT NOT NULL UNIQUE,
	enabled INTEGER NOT NULL DEFAULT 1,
	script TEXT NOT NULL
);

CREATE TABLE leases (
	lease_id {{ID}},
	slice_id BIGINT NOT NULL REFERENCES slices (slice_id),
	node_id BIGINT NOT NULL REFERENCES nodes (node_id),
	t_from BIGINT NOT NULL,
	t_until BIGINT NOT NULL,
	CHECK (t_until > t_from)
);
CREATE INDEX leases_node ON leases (node_id, t_from);

CREATE TABLE sessions (
	session_hash TEXT PRIMARY KEY,
	person_id BIGINT REFERENCES persons (person_id),
	node_id BIGINT REFERENCES nodes (node_id),
	created BIGINT NOT NULL,
	expires BIGINT
);
CREATE INDEX sessions_person ON sessions (person_id);
CREATE INDEX sessions_node ON sessions (node_id);
`,
}

// upgrades are the migrations after the registry (1) and its seed (2,
// seed.go): number 3 is upgrades[0], and so on.
var upgrades = []string{
	// 3: keys the original PLCAPI accepts but OpenSSH cannot use are
	// stored, flagged and never installed (issue 9.1). Every key stored
	// before this migration passed the strict OpenSSH check, so existing
	// rows are usable.
	`
ALTER TABLE keys ADD COLUMN usable INTEGER NOT NULL DEFAULT 1;
ALTER TABLE keys ADD COLUMN unusable_reason TEXT
`,
	// 4: monitoring (issue 11, docs/monitoring.md). node_reports keeps
	// each node's latest sensor summary (JSON core.NodeFigures) so that a
	// restarted PLC starts with a full planet table; monitor_nodes and
	// monitor_sites are the monitor's memory (planet.NodeState,
	// planet.SiteState); monitor_actions and notices its log;
	// slice_suspensions the reasons a slice is suspended (slice tag
	// enabled=0 while any remains). The site tag type "country" is new in
	// core/tags (databases seeded before it get it here).
	`
CREATE TABLE node_reports (
	node_id BIGINT PRIMARY KEY REFERENCES nodes (node_id),
	received BIGINT NOT NULL,
	figures TEXT
);
CREATE TABLE monitor_nodes (
	node_id BIGINT PRIMARY KEY,
	status TEXT NOT NULL,
	since BIGINT NOT NULL
);
CREATE TABLE monitor_sites (
	site_id BIGINT PRIMARY KEY,
	down_since BIGINT NOT NULL,
	level BIGINT NOT NULL,
	disabled_site INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE monitor_actions (
	action_id {{ID}},
	at BIGINT NOT NULL,
	kind TEXT NOT NULL,
	node_id BIGINT,
	site_id BIGINT,
	slice_id BIGINT,
	level BIGINT NOT NULL DEFAULT 0,
	actor TEXT NOT NULL,
	reason TEXT NOT NULL
);
CREATE INDEX monitor_actions_at ON monitor_actions (at);
CREATE TABLE notices (
	notice_id {{ID}},
	at BIGINT NOT NULL,
	site_id BIGINT NOT NULL,
	node_id BIGINT,
	kind TEXT NOT NULL,
	recipients TEXT NOT NULL,
	subject TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX notices_site ON notices (site_id, at);
CREATE TABLE slice_suspensions (
	slice_id BIGINT NOT NULL REFERENCES slices (slice_id),
	source TEXT NOT NULL,
	actor TEXT NOT NULL,
	reason TEXT NOT NULL,
	since BIGINT NOT NULL,
	PRIMARY KEY (slice_id, source)
);
INSERT INTO tag_types (tagname, category, description)
	SELECT 'country', 'site/location', 'ISO 3166-1 alpha-2 code of the site''s country'
	WHERE NOT EXISTS (SELECT 1 FROM tag_types WHERE tagname = 'country');
INSERT INTO tag_type_role (tag_type_id, role_id)
	SELECT tag_type_id, r.role_id FROM tag_types, roles r WHERE tagname = 'country' AND r.role_id IN (10, 20)
	AND NOT EXISTS (SELECT 1 FROM tag_type_role x WHERE x.tag_type_id = tag_types.tag_type_id AND x.role_id = r.role_id)
`,
	// The mail outbox (outbox.go): every message PLC sends, kept until
	// delivered and after; key makes a message that must go once (a
	// slice's expiry warning) go once.
	`
CREATE TABLE outbox (
	mail_id {{ID}},
	key TEXT UNIQUE,
	created BIGINT NOT NULL,
	kind TEXT NOT NULL,
	recipients TEXT NOT NULL,
	subject TEXT NOT NULL,
	body TEXT NOT NULL,
	attempts BIGINT NOT NULL DEFAULT 0,
	next_try BIGINT NOT NULL,
	sent_at BIGINT,
	last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (sent_at, next_try);
`,
	// The slice tag type "runtime" (gVisor slivers, issue 17) for
	// databases seeded before it.
	tagTypeSQL(tags.Runtime),
	// Peering (issue 15, docs/federation.md): the peers table and, on
	// sites, persons, keys, nodes and slices, the peer an object belongs
	// to (NULL: local) and its id at that peer, as the original. A peer is
	// soft-deleted (its foreign objects keep referring to it). key is the
	// peer's Ed25519 public key; max_slices caps the foreign slices of the
	// peer on this PLC's nodes; refused_slices are the foreign slices an
	// admin refused.
	`
CREATE TABLE peers (
	peer_id {{ID}},
	peername TEXT NOT NULL,
	peer_url TEXT NOT NULL,
	key TEXT NOT NULL,
	cacert TEXT,
	shortname TEXT,
	hrn_root TEXT,
	max_slices BIGINT NOT NULL DEFAULT 100,
	last_refresh BIGINT,
	refresh_error TEXT,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX peers_peername ON peers (peername) WHERE deleted = 0;
ALTER TABLE sites ADD COLUMN peer_id BIGINT REFERENCES peers (peer_id);
ALTER TABLE sites ADD COLUMN peer_site_id BIGINT;
ALTER TABLE persons ADD COLUMN peer_id BIGINT REFERENCES peers (peer_id);
ALTER TABLE persons ADD COLUMN peer_person_id BIGINT;
ALTER TABLE keys ADD COLUMN peer_id BIGINT REFERENCES peers (peer_id);
ALTER TABLE keys ADD COLUMN peer_key_id BIGINT;
ALTER TABLE nodes ADD COLUMN peer_id BIGINT REFERENCES peers (peer_id);
ALTER TABLE nodes ADD COLUMN peer_node_id BIGINT;
ALTER TABLE slices ADD COLUMN peer_id BIGINT REFERENCES peers (peer_id);
ALTER TABLE slices ADD COLUMN peer_slice_id BIGINT;
CREATE UNIQUE INDEX sites_peer ON sites (peer_id, peer_site_id) WHERE peer_id IS NOT NULL AND deleted = 0;
CREATE UNIQUE INDEX persons_peer ON persons (peer_id, peer_person_id) WHERE peer_id IS NOT NULL AND deleted = 0;
CREATE UNIQUE INDEX keys_peer ON keys (peer_id, peer_key_id) WHERE peer_id IS NOT NULL;
CREATE UNIQUE INDEX nodes_peer ON nodes (peer_id, peer_node_id) WHERE peer_id IS NOT NULL AND deleted = 0;
CREATE UNIQUE INDEX slices_peer ON slices (peer_id, peer_slice_id) WHERE peer_id IS NOT NULL AND deleted = 0;
CREATE TABLE refused_slices (
	slice_id BIGINT PRIMARY KEY REFERENCES slices (slice_id),
	actor TEXT NOT NULL,
	reason TEXT NOT NULL,
	since BIGINT NOT NULL
);
`,
	// The slice tag type "vlinks" (virtual links, issue 16) for databases
	// seeded before it.
	tagTypeSQL(tags.VLinks),
	// The login backoff shared by PLC replicas (backoff.go,
	// docs/replicas.md): one row per failing (account, source) pair or
	// source, times in UNIX milliseconds.
	`
CREATE TABLE login_backoff (
	key TEXT PRIMARY KEY,
	fails BIGINT NOT NULL,
	last_ms BIGINT NOT NULL,
	until_ms BIGINT NOT NULL
);
CREATE INDEX login_backoff_last ON login_backoff (last_ms);
`,
	// The slice tag type "nm_api" (the node manager's local API in
	// slivers, issue 14) for databases seeded before it.
	tagTypeSQL(tags.NMAPI),
	// The slice tag "vsys" grants privileged operations (issue 14,
	// docs/brokering.md): its new description, the original's writers
	// (admins, PIs, users, techs).
	tagTypeRolesSQL(tags.Vsys),
	// Per-peer caps on a peer's slivers on this PLC's nodes (issue 15,
	// docs/federation.md): at most max_slivers_per_node of its slivers on
	// one node, and each sliver's rspec clipped to the cap_* values (the
	// slice tags' units); NULL: no cap.
	`
ALTER TABLE peers ADD COLUMN max_slivers_per_node BIGINT;
ALTER TABLE peers ADD COLUMN cap_cpu_share BIGINT;
ALTER TABLE peers ADD COLUMN cap_cpu_pct BIGINT;
ALTER TABLE peers ADD COLUMN cap_net_min_rate BIGINT;
ALTER TABLE peers ADD COLUMN cap_net_max_rate BIGINT;
ALTER TABLE peers ADD COLUMN cap_mem_max BIGINT;
`,
	// The interface tag type "sliversipv6prefix" (slivers' IPv6 prefix,
	// issue 16) for databases seeded before it.
	tagTypeSQL(tags.SliversIPv6Prefix),
	// The GENI aggregate's memory (store/geni.go, docs/geni.md): allocated
	// slivers and links until they are provisioned or expire, client_ids
	// of provisioned ones, restarts in progress; and the tags that mark
	// the stand-ins of other GENI authorities' slices, users and
	// authorities (issue 15).
	`
CREATE TABLE geni_slivers (
	slice_id BIGINT NOT NULL REFERENCES slices (slice_id),
	kind TEXT NOT NULL,
	ref TEXT NOT NULL,
	client_id TEXT NOT NULL,
	allocated_until BIGINT NOT NULL DEFAULT 0,
	spec TEXT NOT NULL DEFAULT '',
	restart_until BIGINT NOT NULL DEFAULT 0,
	restart_actor TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (slice_id, kind, ref)
);
` + tagTypeSQL(tags.GENIAuthority) + tagTypeSQL(tags.GENISlice) + tagTypeSQL(tags.GENIUser),
}

func (db *DB) migrate(ctx context.Context) error { return db.apply(ctx, migrations) }

// apply brings the database to version len(list), running the migrations
// it lacks in one transaction. Each migration is one script run by one Exec
// with no arguments, so neither this program nor Rebind ever cuts or
// rewrites its SQL: both drivers run a multi-statement script then (SQLite
// steps through it, pgx uses PostgreSQL's simple query protocol), and a ';'
// or '?' inside a string literal is only text.
func (db *DB) apply(ctx context.Context, list []string) error {
	return db.Write(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)`); err != nil {
			return err
		}
		cur, err := tx.Int(ctx, `SELECT MAX(version) FROM schema_migrations`)
		if err != nil {
			return err
		}
		if int(cur) > len(list) {
			return fmt.Errorf("database schema version %d is newer than this program's (%d)", cur, len(list))
		}
		for v := int(cur) + 1; v <= len(list); v++ {
			if _, err := tx.tx.ExecContext(ctx, db.expand(list[v-1])); err != nil {
				return fmt.Errorf("migration %d: %w", v, wrapDB("exec", err))
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, v, time.Now().Unix()); err != nil {
				return err
			}
		}
		return nil
	})
}

func (db *DB) expand(s string) string {
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if db.Dialect == Postgres {
		id = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
	}
	return strings.ReplaceAll(s, "{{ID}}", id)
}

// SchemaVersion returns the applied schema version.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int64
	err := db.Read(ctx, func(tx *Tx) error {
		var err error
		v, err = tx.Int(ctx, `SELECT MAX(version) FROM schema_migrations`)
		return err
	})
	return int(v), err
}

// LatestVersion is the schema version this program migrates to.
func LatestVersion() int { return len(migrations) }
