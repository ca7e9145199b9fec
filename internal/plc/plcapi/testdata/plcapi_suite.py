#!/usr/bin/env python3
"""PLCAPI compatibility suite, driven with Python's standard xmlrpc.client as
PlanetLab scripts did. Run by plcapi's Go integration test against the real
handler and service; configuration comes from the environment:

  PLC_URL        https://127.0.0.1:port/PLCAPI/
  PLC_CAFILE     PEM of the server certificate
  PLC_ADMIN      admin email      PLC_ADMIN_PW  admin password
  PLC_SITE       login_base of a site holding node PLC_NODE_ID
  PLC_NODE_ID    node id          PLC_NODE_KEY  its key (BootAuth)

Prints "OK <n> checks" and exits 0, or prints the failures and exits 1.
"""
import base64, hmac, os, random, ssl, struct, sys, time, xmlrpc.client
from hashlib import sha1

URL = os.environ["PLC_URL"]
ctx = ssl.create_default_context(cafile=os.environ["PLC_CAFILE"])
ctx.check_hostname = False
api = xmlrpc.client.ServerProxy(URL, allow_none=True, context=ctx)
admin = {"AuthMethod": "password", "Username": os.environ["PLC_ADMIN"], "AuthString": os.environ["PLC_ADMIN_PW"]}
NODE_ID = int(os.environ["PLC_NODE_ID"])
NODE_KEY = os.environ["PLC_NODE_KEY"]
SITE = os.environ["PLC_SITE"]

checks = 0
failures = []


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def fault(code, fn, *args, contains=None):
    """Calls fn(*args) and checks that it faults with code."""
    global checks
    checks += 1
    try:
        r = fn(*args)
    except xmlrpc.client.Fault as f:
        if f.faultCode != code or (contains and contains not in f.faultString):
            failures.append("%s%r: fault %d %r, want %d %r" % (fn._Method__name, args[1:], f.faultCode, f.faultString, code, contains))
            print("FAIL:", failures[-1], file=sys.stderr)
        return f
    failures.append("%s%r: returned %r, want fault %d" % (fn._Method__name, args[1:], r, code))
    print("FAIL:", failures[-1], file=sys.stderr)


def ssh_rsa_key(comment, seed):
    """A syntactically valid ssh-rsa public key (random 2048-bit modulus)."""
    rnd = random.Random(seed)
    def mpint(n):
        b = n.to_bytes((n.bit_length() + 8) // 8, "big")
        return struct.pack(">I", len(b)) + b
    n = rnd.getrandbits(2048) | (1 << 2047) | 1
    blob = struct.pack(">I", 7) + b"ssh-rsa" + mpint(65537) + mpint(n)
    return "ssh-rsa " + base64.b64encode(blob).decode() + " " + comment


def password(email, pw):
    return {"AuthMethod": "password", "Username": email, "AuthString": pw}


# --- BootAuth exactly as the original node manager's plcapi.py -------------
def canonicalize(args):
    values = []
    for arg in args:
        if isinstance(arg, list) or isinstance(arg, tuple):
            values += canonicalize(arg)
        elif isinstance(arg, dict):
            values += canonicalize(list(arg.values()))
        else:
            values.append(str(arg))
    return values


def boot_auth(*args):
    values = canonicalize(args)
    values.sort()
    msg = "[" + "".join(values) + "]"
    digest = hmac.new(NODE_KEY.encode("utf-8"), msg.encode("utf-8"), sha1).hexdigest()
    return {"AuthMethod": "hmac", "node_id": NODE_ID, "value": digest}


def slivers():
    return api.GetSlivers(boot_auth())


def sliver(name):
    for s in slivers()["slivers"]:
        if s["name"] == name:
            return s
    return None


def attrs(s):
    return sorted((a["tagname"], a["value"]) for a in s["attributes"])


# --- introspection and anonymous calls ------------------------------------
methods = api.system.listMethods()
for m in ["GetNodes", "AddSlice", "GetSlivers", "system.multicall", "BootGetNodeDetails", "GetLeaseGranularity"]:
    check(m in methods, "listMethods has " + m)
check(["int", "struct", "int"] in api.system.methodSignature("DeleteNode"), "methodSignature")
check("GetNodes" in api.system.methodHelp("GetNodes"), "methodHelp")
check(isinstance(api.GetPlcRelease({"AuthMethod": "anonymous"}), dict), "GetPlcRelease anonymous")
check(api.GetLeaseGranularity({"AuthMethod": "anonymous"}) == 3600, "lease granularity")
check(api.AuthCheck(admin) == 1, "AuthCheck admin")

# --- bad input ---------------------------------------------------------------
fault(100, api.GetFoo, admin)
fault(101, api.GetNodes, contains="Expected 1-3 arguments, got 0")
fault(101, api.AuthCheck, admin, 1, contains="Expected 1 arguments, got 2")
fault(102, api.AuthCheck, {"AuthMethod": "kerberos"}, contains="Invalid AuthMethod value")
fault(102, api.AuthCheck, {"AuthMethod": "password", "Username": "x"}, contains="'AuthString' not specified")
fault(102, api.AuthCheck, "not a struct", contains="expected struct, got string")
fault(103, api.AuthCheck, password(os.environ["PLC_ADMIN"], "wrong"))
fault(103, api.AuthCheck, {"AuthMethod": "anonymous"}, contains="cannot be called anonymously")
fault(102, api.GetNodes, admin, 1.5, contains="Invalid node_filter value")
fault(102, api.GetNodes, admin, {"no_such_field": 1}, contains="no_such_field")
fault(102, api.GetNodes, admin, None, ["hostname", "no_such_field"], contains="no_such_field")

# --- sites: UTF-8 at byte limits, floats, booleans ---------------------------
name254 = "é" * 127                   # 254 bytes, 127 characters
site_id = api.AddSite(admin, {"name": name254, "abbreviated_name": "Ünï", "login_base": "utf",
                              "latitude": 45.5, "longitude": -73.25, "is_public": False, "max_slices": 5,
                              "url": "http://utf.example.org"})
check(isinstance(site_id, int) and site_id > 0, "AddSite returns id")
s = api.GetSites(admin, "utf")[0]
check(s["name"] == name254 and s["abbreviated_name"] == "Ünï", "UTF-8 site name round trip")
check(s["latitude"] == 45.5 and s["longitude"] == -73.25, "floats round trip")
check(s["is_public"] is False and s["enabled"] is True, "booleans round trip")
check(isinstance(s["date_created"], int), "timestamps are ints")
fault(102, api.AddSite, admin, {"name": "é" * 128, "abbreviated_name": "x", "login_base": "utf2"}, contains="at most 254 bytes")
fault(102, api.AddSite, admin, {"name": "x", "abbreviated_name": "x", "login_base": "utf3", "latitude": 45}, contains="expected double, got int")
fault(102, api.AddSite, admin, {"name": "x", "abbreviated_name": "x", "login_base": "Bad Base"})
check(api.GetSites(admin, {"login_base": "utf3"}) == [], "no partial write after a type fault")
check(api.UpdateSite(admin, "utf", {"latitude": 10.0, "longitude": 20.0, "is_public": True}) == 1, "UpdateSite")
s = api.GetSites(admin, [site_id], ["latitude", "is_public"])[0]
check(s == {"latitude": 10.0, "is_public": True}, "UpdateSite visible, return_fields honoured: %r" % s)
check([x["login_base"] for x in api.GetSites(admin, {"login_base": "ut*"}, ["login_base"])] == ["utf"], "wildcard filter")
# issue 9.3: long lists work as in the original
check(site_id in [x["site_id"] for x in api.GetSites(admin, list(range(1, 40001)), ["site_id"])], "GetSites with 40,000 ids")
names = ["nosuch%d" % i for i in range(100000)] + ["utf"]
check([x["site_id"] for x in api.GetSites(admin, names, ["site_id"])] == [site_id], "GetSites with 100,001 names")
check([x["site_id"] for x in api.GetSites(admin, {"login_base": names}, ["site_id"])] == [site_id], "GetSites with a 100,001-value filter")

check(api.UpdateSite(admin, "utf", {"max_slices": True}) == 1 and api.GetSites(admin, ["utf"], ["max_slices"])[0]["max_slices"] == 1,
      "a boolean passes as an int (Python's bool is an int)")
api.UpdateSite(admin, "utf", {"max_slices": 5})

# huge or deep payloads: HTTP errors, not crashes
deep = []
for _ in range(200):
    deep = [deep]
try:
    api.GetNodes(admin, deep)
    check(False, "deep payload accepted")
except xmlrpc.client.ProtocolError as e:
    check(e.errcode == 400, "deep payload: HTTP 400, got %d" % e.errcode)
try:
    api.GetNodes(admin, {"hostname": "x" * (9 << 20)})
    check(False, "huge payload accepted")
except xmlrpc.client.ProtocolError as e:
    check(e.errcode == 413, "huge payload: HTTP 413, got %d" % e.errcode)
except ConnectionError:
    pass  # the server may close the connection before the client finished sending
check(api.AuthCheck(admin) == 1, "server fine after bad payloads")

# addresses and address types
at = api.AddAddressType(admin, {"name": "Office", "description": "office"})
addr = api.AddSiteAddress(admin, "utf", {"line1": "1 Rue", "city": "Montréal", "state": "QC", "postalcode": "H2X", "country": "Canada"})
check(api.AddAddressTypeToAddress(admin, "Office", addr) == 1, "AddAddressTypeToAddress")
a = api.GetAddresses(admin, [addr])[0]
check(a["city"] == "Montréal" and at in a["address_type_ids"], "address round trip %r" % a)
check(api.UpdateAddress(admin, addr, {"city": "Québec"}) == 1 and api.GetAddresses(admin, [addr])[0]["city"] == "Québec", "UpdateAddress")
check(api.DeleteAddressTypeFromAddress(admin, at, addr) == 1, "DeleteAddressTypeFromAddress")
check(api.DeleteAddress(admin, addr) == 1 and api.GetAddresses(admin, [addr]) == [], "DeleteAddress")
check(api.DeleteAddressType(admin, "Office") == 1 and api.GetAddressTypes(admin, ["Office"]) == [], "DeleteAddressType")

# --- persons: disabled until enabled, roles, keys ----------------------------
pi_email, pi_pw = "pi@utf.example.org", "pi-password"
pi_id = api.AddPerson(admin, {"first_name": "Pía", "last_name": "Ïnvestigator", "email": pi_email, "password": pi_pw, "enabled": True})
check(api.AddPersonToSite(admin, pi_id, "utf") == 1, "AddPersonToSite")
check(api.AddRoleToPerson(admin, "pi", pi_email) == 1, "AddRoleToPerson")
pi = password(pi_email, pi_pw)
fault(103, api.AuthCheck, pi)                               # created disabled, even with enabled=True
check(api.UpdatePerson(admin, pi_id, {"enabled": True}) == 1, "enable person")
check(api.AuthCheck(pi) == 1, "enabled person authenticates")
p = api.GetPersons(admin, [pi_email])[0]
check(p["first_name"] == "Pía" and "pi" in p["roles"] and p["site_ids"] == [site_id], "person round trip %r" % p)
check("password" not in p, "GetPersons hides password")
fault(103, api.AddSite, pi, {"name": "x", "abbreviated_name": "x", "login_base": "x"}, contains="Failed to authenticate call")

user_email = "user@utf.example.org"
user_id = api.AddPerson(pi, {"first_name": "U", "last_name": "Ser", "email": user_email, "password": "user-pw"})
api.AddPersonToSite(admin, user_id, site_id)
api.AddRoleToPerson(pi, "user", user_id)
api.UpdatePerson(pi, user_id, {"enabled": True})
user = password(user_email, "user-pw")
fault(108, api.AddRoleToPerson, pi, "admin", user_id)       # a PI cannot grant admin
# Mail methods (their mail goes to the outbox; mail_test.go follows it to a real SMTP server).
check(api.ResetPassword(admin, user_email) == 1, "ResetPassword mails a reset link")
fault(108, api.ResetPassword, admin, user_id, None, None, contains="pending")  # one pending at a time
fault(108, api.ResetPassword, admin, user_id, "not-the-key")  # a wrong key
fault(102, api.ResetPassword, admin, os.environ["PLC_ADMIN"])  # never for admins
fault(103, api.ResetPassword, user, user_email)               # admin only (the role gate)
fault(102, api.VerifyPerson, admin, user_email)               # only new (disabled) accounts
check(api.NotifyPersons(admin, [user_email], "Hello", "a message") == 1, "NotifyPersons")
fault(102, api.NotifyPersons, admin, [987654], "s", "b")       # nobody selected
fault(109, api.NotifySupport, admin, "s", "b")                 # no support address configured here

KEY = ssh_rsa_key("user@host", 1)
key_id = api.AddPersonKey(user, user_email, {"key_type": "ssh", "key": KEY})
check(api.GetKeys(user, [key_id])[0]["key"] == KEY, "GetKeys own key")
bad_key = ssh_rsa_key("blacklisted@host", 2)
bad_id = api.AddPersonKey(admin, user_id, {"key_type": "ssh", "key": bad_key})
check(api.BlacklistKey(admin, bad_id) == 1, "BlacklistKey")
check(api.GetKeys(admin, [bad_id]) == [], "blacklisted key hidden")
fault(102, api.AddPersonKey, admin, user_id, {"key_type": "ssh", "key": bad_key})
fault(102, api.AddPersonKey, user, user_id, {"key_type": "ssh", "key": "not a key"})
# issue 9.1: what the original's pattern accepts is stored, flagged unusable with the reason
text_key = "ssh-rsa " + base64.b64encode(b"any text at all").decode() + " user@host"
text_id = api.AddPersonKey(user, user_email, {"key_type": "ssh", "key": text_key})
k = api.GetKeys(user, [text_id])[0]
check(k["key"] == text_key and k["usable"] is False and "not an OpenSSH public key" in k["unusable_reason"], "text as ssh-rsa key stored unusable %r" % k)
check(api.GetKeys(user, [key_id])[0]["usable"] is True, "real key usable")
fault(102, api.AddPersonKey, user, user_id, {"key_type": "ssh", "key": "ecdsa-sha2-nistp256 " + base64.b64encode(b"text").decode()})
check(api.DeleteKey(user, text_id) == 1, "DeleteKey unusable")

# sessions
sess = api.GetSession(user)
sauth = {"AuthMethod": "session", "session": sess}
check(api.AuthCheck(sauth) == 1, "session auth")
check(api.GetSession(sauth) == sess, "GetSession under session auth returns it")
fault(108, api.AddSlice, sauth, {"name": "utf_x"})           # session: missing role is 108 ...
fault(103, api.AddSlice, user, {"name": "utf_x"})            # ... password: 103
check(api.AuthCheck(sauth) == 1, "session survives a 108")

# --- tag types, nodes, node tags, node groups ---------------------------------
tt = api.AddTagType(admin, {"tagname": "colour", "description": "node colour", "category": "node/test"})
check(api.GetTagTypes(admin, ["colour"])[0]["tag_type_id"] == tt, "GetTagTypes by name")
check(api.AddRoleToTagType(admin, "tech", tt) == 1, "AddRoleToTagType")
check("tech" in api.GetTagTypes(admin, [tt])[0]["roles"], "tag type roles")
check(api.DeleteRoleFromTagType(admin, "tech", "colour") == 1, "DeleteRoleFromTagType")
check(api.UpdateTagType(admin, "colour", {"description": "couleur"}) == 1, "UpdateTagType")

node_a = api.AddNode(pi, "utf", {"hostname": "A.utf.example.org", "model": "x86"})
node_b = api.AddNode(admin, site_id, {"hostname": "b.utf.example.org"})
na = api.GetNodes(admin, node_a)[0]
check(na["hostname"] == "a.utf.example.org" and na["boot_state"] == "reinstall", "node defaults, hostname lowercased: %r" % na["hostname"])
check(api.UpdateNode(pi, "a.utf.example.org", {"boot_state": "boot"}) == 1, "UpdateNode")
fault(102, api.UpdateNode, pi, "a.utf.example.org", {"boot_state": "nonsense"})
ntag = api.AddNodeTag(admin, node_a, "colour", "red")
api.AddNodeTag(admin, "b.utf.example.org", tt, "blue")
ng = api.AddNodeGroup(admin, "reds", "colour", "red")
check(api.GetNodeGroups(admin, ["reds"])[0]["node_ids"] == [node_a], "nodegroup membership from node tag")
check(api.GetNodes(admin, [node_a], ["colour"])[0]["colour"] == "red", "tag as return field")
check([n["node_id"] for n in api.GetNodes(admin, {"colour": "blue"}, ["node_id"])] == [node_b], "filter on tag")
check(api.UpdateNodeTag(admin, ntag, "green") == 1, "UpdateNodeTag")
check(api.GetNodeGroups(admin, [ng])[0]["node_ids"] == [], "node leaves group when its tag changes")
api.UpdateNodeTag(admin, ntag, "red")
check(api.GetNodeTags(admin, {"node_id": node_a, "tagname": "colour"})[0]["value"] == "red", "GetNodeTags")
check(api.UpdateNodeGroup(admin, "reds", {"groupname": "rouges"}) == 1, "UpdateNodeGroup")
check(api.GetNodeGroups(admin, ["rouges"])[0]["nodegroup_id"] == ng, "renamed group")

# filters (reference §2.3)
def hosts(flt, auth=admin):
    return [n["hostname"] for n in api.GetNodes(auth, flt, ["hostname"])]
check(hosts({"site_id": site_id, "-SORT": "-hostname"}) == ["b.utf.example.org", "a.utf.example.org"], "-SORT descending")
check(hosts({"site_id": site_id, "-SORT": "hostname", "-LIMIT": 1}) == ["a.utf.example.org"], "-LIMIT")
check(hosts({"site_id": site_id, "-SORT": "hostname", "-OFFSET": 1}) == ["b.utf.example.org"], "-OFFSET")
check(hosts({"site_id": site_id, "~hostname": "a.utf.example.org"}) == ["b.utf.example.org"], "~ negation")
check(hosts({"site_id": site_id, ">node_id": node_a}) == ["b.utf.example.org"], "> comparison")
check(hosts({"site_id": site_id, "]node_id": node_a, "-SORT": "node_id"}) == ["a.utf.example.org", "b.utf.example.org"], "] comparison")
check(hosts({"site_id": site_id, "model": None}) == ["b.utf.example.org"], "None is IS NULL")
check(sorted(hosts({"hostname": "a.utf.example.org", "node_id": node_b, "-OR": True})) == ["a.utf.example.org", "b.utf.example.org"], "-OR")
check(hosts({"hostname": "*.UTF.example.org", "-SORT": "hostname"}) == ["a.utf.example.org", "b.utf.example.org"], "case-insensitive wildcard")
check(hosts([]) == [], "empty list matches nothing")
check(sorted(hosts([node_a, "b.utf.example.org"])) == ["a.utf.example.org", "b.utf.example.org"], "ids and names OR'ed")
check(hosts("a.utf.example.org") == ["a.utf.example.org"] and hosts(node_b) == ["b.utf.example.org"], "bare name and id")
check(pi_email in [p["email"] for p in api.GetPersons(admin, {"|role_ids": [20, 40]}, ["email"])], "| contains any")
check(pi_email not in [p["email"] for p in api.GetPersons(admin, {"&role_ids": [20, 40]}, ["email"])], "& contains all")
fault(102, api.GetNodes, admin, {"-LIMIT": "x"})

# never partial writes
fault(102, api.AddSite, admin, {"name": "x", "abbreviated_name": "x", "login_base": "partial", "no_such_column": 1})
check(api.GetSites(admin, ["partial"]) == [], "no site from a rejected AddSite")

# interfaces and interface tags, ilinks
if_a = api.AddInterface(admin, node_a, {"type": "ipv4", "method": "dhcp", "mac": "AA:BB:CC:DD:EE:FF", "is_primary": True})
if_b = api.AddInterface(admin, node_b, {"type": "ipv4", "method": "dhcp", "is_primary": True})
i = api.GetInterfaces(admin, [if_a])[0]
check(i["mac"] == "aa:bb:cc:dd:ee:ff" and i["is_primary"] is True, "interface round trip %r" % i)
check(api.UpdateInterface(admin, if_a, {"bwlimit": 1000000}) == 1 and api.GetInterfaces(admin, [if_a])[0]["bwlimit"] == 1000000, "UpdateInterface")
api.AddTagType(admin, {"tagname": "test_ifname", "category": "interface"})
itag = api.AddInterfaceTag(admin, if_a, "test_ifname", "eth0")
check(api.GetInterfaceTags(admin, [itag])[0]["value"] == "eth0", "GetInterfaceTags")
check(api.UpdateInterfaceTag(admin, itag, "eth1") == 1 and api.DeleteInterfaceTag(admin, itag) == 1, "interface tag update/delete")
api.AddTagType(admin, {"tagname": "link", "category": "ilink"})
il = api.AddIlink(admin, if_a, if_b, "link", "10Mbps")
check(api.GetIlinks(admin, [il])[0]["value"] == "10Mbps", "GetIlinks")
check(api.UpdateIlink(admin, il, "1Gbps") == 1 and api.DeleteIlink(admin, il) == 1 and api.GetIlinks(admin, [il]) == [], "ilink update/delete")

# PCUs
pcu = api.AddPCU(pi, "utf", {"ip": "10.1.2.3", "hostname": "pcu.utf.example.org", "protocol": "ssh", "model": "apc"})
check(api.AddNodeToPCU(pi, node_a, pcu, 1) == 1, "AddNodeToPCU")
check(api.GetPCUs(pi, [pcu])[0]["node_ids"] == [node_a], "PCU node_ids")
check(api.UpdatePCU(pi, pcu, {"notes": "rack 4"}) == 1, "UpdatePCU")
check(api.DeleteNodeFromPCU(pi, node_a, pcu) == 1 and api.GetPCUs(pi, [pcu])[0]["node_ids"] == [], "DeleteNodeFromPCU")
check(api.DeletePCU(pi, pcu) == 1 and api.GetPCUs(admin, [pcu]) == [], "DeletePCU")

# conf files and init scripts
cf = api.AddConfFile(admin, {"source": "PlanetLabConf/motd", "dest": "/etc/motd", "enabled": True})
check(api.AddConfFileToNode(admin, cf, NODE_ID) == 1, "AddConfFileToNode")
check(api.AddConfFileToNodeGroup(admin, cf, "rouges") == 1, "AddConfFileToNodeGroup")
c = api.GetConfFiles(admin, [cf])[0]
check(c["node_ids"] == [NODE_ID] and c["nodegroup_ids"] == [ng] and c["file_permissions"] == "0644", "conf file round trip %r" % c)
check("/etc/motd" in [f["dest"] for f in slivers()["conf_files"]], "GetSlivers conf_files")
check(api.DeleteConfFileFromNode(admin, cf, NODE_ID) == 1 and api.DeleteConfFileFromNodeGroup(admin, cf, ng) == 1, "conf file detach")
check(api.UpdateConfFile(admin, cf, {"enabled": False}) == 1 and api.DeleteConfFile(admin, cf) == 1, "conf file update/delete")
ini = api.AddInitScript(admin, {"name": "hello", "enabled": True, "script": "#!/bin/sh\necho hi\n"})
check(api.GetInitScripts(admin, ["hello"])[0]["script"] == "#!/bin/sh\necho hi\n", "init script round trip")
check("hello" in [x["name"] for x in slivers()["initscripts"]], "GetSlivers initscripts")
check(api.UpdateInitScript(admin, ini, {"enabled": False}) == 1, "UpdateInitScript")
check("hello" not in [x["name"] for x in slivers()["initscripts"]], "disabled init script hidden from GetSlivers")

# lookup tables
check("boot" in api.GetBootStates(admin), "GetBootStates")
check(api.AddBootState(admin, "debug") == 1 and "debug" in api.GetBootStates(admin), "AddBootState")
check(api.DeleteBootState(admin, "debug") == 1 and "debug" not in api.GetBootStates(admin), "DeleteBootState")
check("regular" in api.GetNodeTypes(admin) and "ssh" in api.GetKeyTypes(admin), "node and key types")
check("plc-instantiated" in api.GetSliceInstantiations(admin), "slice instantiations")
check("ipv4" in api.GetNetworkTypes(admin) and "dhcp" in api.GetNetworkMethods(admin), "network types/methods")
check({r["name"] for r in api.GetRoles(admin)} >= {"admin", "pi", "user", "tech"}, "GetRoles")

# --- the typical PlanetLab script: slice life cycle, GetSlivers at each step --
hostname = api.GetNodes(admin, [NODE_ID], ["hostname"])[0]["hostname"]
nodes = api.GetNodes(pi, {}, ["node_id", "hostname"])
check(hostname in [n["hostname"] for n in nodes], "PI lists nodes")
slice_name = "utf_demo"
slice_id = api.AddSlice(pi, {"name": slice_name, "url": "http://demo.example.org", "description": "démo slice",
                             "instantiation": "plc-instantiated"})
check(slice_id > 0, "AddSlice")
check(api.AddPersonToSlice(pi, user_email, slice_name) == 1, "AddPersonToSlice")
check(api.AddSliceToNodes(pi, slice_name, [hostname, node_a]) == 1, "AddSliceToNodes")
check(api.AddSliceToNodes(pi, slice_name, [hostname]) == 1, "AddSliceToNodes again is not an error")
fault(102, api.AddSliceToNodes, pi, slice_name, ["b.utf.example.org", "nosuch.example.org"])
check(node_b not in api.GetSlices(pi, [slice_name])[0]["node_ids"], "no partial AddSliceToNodes")
sl = api.GetSlices(user, [slice_name])[0]
check(sorted(sl["node_ids"]) == sorted([NODE_ID, node_a]) and sl["person_ids"] == [user_id], "slice membership %r" % sl)
sv = sliver(slice_name)
check(sv is not None, "GetSlivers lists the new slice")
check(sv and [k["key"] for k in sv["keys"]] == [KEY], "sliver keys are the members' (not blacklisted) keys: %r" % (sv and sv["keys"]))
fault(103, api.AddPersonToSlice, user, pi_email, slice_name)    # users cannot add members: not in the role set

# slice tags: global, nodegroup and node scope
api.AddTagType(admin, {"tagname": "test_rate", "category": "slice/rspec"})
fault(108, api.AddSliceTag, pi, slice_name, "test_rate", "100")    # tag type roles: admin only so far
api.AddRoleToTagType(admin, "pi", "test_rate")
t_global = api.AddSliceTag(pi, slice_name, "test_rate", "100")
t_group = api.AddSliceTag(admin, slice_name, "test_rate", "200", None, "rouges")
check(("test_rate", "100") in attrs(sliver(slice_name)), "global slice tag on the node")
api.AddNodeTag(admin, NODE_ID, "colour", "red")           # the node joins group rouges
check(("test_rate", "200") in attrs(sliver(slice_name)) and ("test_rate", "100") not in attrs(sliver(slice_name)), "nodegroup tag beats global")
t_node = api.AddSliceTag(pi, slice_name, "test_rate", "300", hostname)
check([v for k, v in attrs(sliver(slice_name)) if k == "test_rate"] == ["300"], "node tag beats nodegroup")
fault(108, api.AddSliceTag, pi, slice_name, "test_rate", "400", None, "rouges")   # nodegroup scope: admin only
check(api.UpdateSliceTag(pi, t_node, "350") == 1 and ("test_rate", "350") in attrs(sliver(slice_name)), "UpdateSliceTag")
check(api.DeleteSliceTag(pi, t_node) == 1 and ("test_rate", "200") in attrs(sliver(slice_name)), "DeleteSliceTag falls back to group")
check(api.SetSliceVref(pi, slice_name, "f39") == "f39" and api.GetSliceVref(pi, slice_name) == "f39", "accessors")
check(("vref", "f39") in attrs(sliver(slice_name)), "vref accessor reaches GetSlivers")
st = api.GetSliceTags(pi, {"name": slice_name, "tagname": "test_rate"})
check(sorted(x["slice_tag_id"] for x in st) == sorted([t_global, t_group]), "GetSliceTags %r" % st)

# renew
expires = int(time.time()) + 4 * 7 * 86400
check(api.UpdateSlice(pi, slice_name, {"expires": expires}) == 1, "renew")
check(api.GetSlices(pi, [slice_id], ["expires"])[0]["expires"] == expires, "renewed expiry")
check(sliver(slice_name)["expires"] == expires, "GetSlivers shows the renewal")
fault(102, api.UpdateSlice, pi, slice_name, {"expires": int(time.time()) + 20 * 7 * 86400})

# leases on a reservable node
check(api.GetSlivers(admin, node_a)["reservation_policy"] == "none" and api.GetSlivers(admin, node_a)["leases"] is None, "regular node: no leases")
api.UpdateNode(admin, node_a, {"node_type": "reservable"})
g = api.GetLeaseGranularity(pi)
t0 = (int(time.time()) // g + 2) * g
t_from = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t0))
r = api.AddLeases(pi, [node_a], slice_name, t_from, t0 + 2 * g)
check(len(r["new_ids"]) == 1 and r["errors"] == [], "AddLeases with a string time: %r" % r)
lease = r["new_ids"][0]
l = api.GetLeases(pi, [lease])[0]
check(l["t_from"] == t0 and l["t_until"] == t0 + 2 * g and l["node_id"] == node_a and l["name"] == slice_name, "GetLeases %r" % l)
r2 = api.AddLeases(pi, "a.utf.example.org", slice_name, t0 + g, t0 + 3 * g)
check(r2["new_ids"] == [] and len(r2["errors"]) == 1, "overlapping lease refused: %r" % r2)
u = api.UpdateLeases(pi, lease, {"t_until": t0 + 3 * g})
check(u == {"updated_ids": [lease], "errors": []} and api.GetLeases(pi, [lease])[0]["t_until"] == t0 + 3 * g, "UpdateLeases %r" % u)
sa = api.GetSlivers(admin, node_a)
check(sa["reservation_policy"] == "lease_or_idle" and [x["slice_id"] for x in sa["leases"]] == [slice_id], "GetSlivers leases %r" % sa["leases"])
check(api.DeleteLeases(pi, [lease]) == 1 and api.GetLeases(pi, [lease]) == [], "DeleteLeases")

# multicall
mc = xmlrpc.client.MultiCall(api)
mc.GetSlices(pi, [slice_name], ["name"])
mc.GetFoo(pi)
mc.AuthCheck(pi)
res = mc()
check(res[0] == [{"name": slice_name}], "multicall result 1")
try:
    res[1]
    check(False, "multicall fault expected")
except xmlrpc.client.Fault as f:
    check(f.faultCode == 100, "multicall fault code")
check(res[2] == 1, "multicall result 3")

# node-side calls under BootAuth and node sessions
nsess = api.GetSession(boot_auth())
nauth = {"AuthMethod": "session", "session": nsess}
check(api.AuthCheck(nauth) == 1 and api.BootCheckAuthentication(nauth) == 1, "node session")
check(api.GetSlivers(nauth)["node_id"] == NODE_ID, "GetSlivers under node session")
check(api.ReportRunlevel(nauth, {"run_level": "boot"}) == 1, "ReportRunlevel")
d = api.BootGetNodeDetails(boot_auth())
check(d["hostname"] == hostname, "BootGetNodeDetails %r" % d)
fault(103, api.GetSlivers, {"AuthMethod": "hmac", "node_id": NODE_ID, "value": "0" * 40})
fault(103, api.AddSite, boot_auth({"name": "x"}), {"name": "x"})
# (boot_state changes by the node itself need a service operation that does not exist yet)
bargs = ({"ssh_host_key": ssh_rsa_key("root@node", 3)},)
check(api.BootUpdateNode(boot_auth(*bargs), *bargs) == 1, "BootUpdateNode with HMAC over its arguments")

# delete: soft delete means never listed again
check(api.DeleteSliceFromNodes(pi, slice_name, [node_a]) == 1 and api.GetSlices(pi, [slice_id])[0]["node_ids"] == [NODE_ID], "DeleteSliceFromNodes")
check(api.DeletePersonFromSlice(pi, user_id, slice_id) == 1, "DeletePersonFromSlice")
check(api.DeleteSlice(pi, slice_name) == 1, "DeleteSlice")
check(api.GetSlices(admin, [slice_id]) == [] and api.GetSlices(admin, {"name": slice_name}) == [], "deleted slice never listed")
check(sliver(slice_name) is None, "GetSlivers drops the deleted slice")
check(api.DeleteNode(admin, node_b) == 1 and api.GetNodes(admin, [node_b]) == [] and api.GetNodes(admin, "b.utf.example.org") == [], "soft-deleted node gone")
check(api.DeleteKey(user, key_id) == 1 and api.GetKeys(admin, [key_id]) == [], "DeleteKey")
check(api.DeleteSession(sauth) == 1, "DeleteSession")
fault(103, api.AuthCheck, sauth)
check(api.DeletePerson(admin, user_email) == 1 and api.GetPersons(admin, [user_id]) == [], "soft-deleted person gone")
fault(103, api.AuthCheck, user)
check(api.GetSlivers(admin, hostname)["node_id"] == NODE_ID, "GetSlivers by an admin, by hostname")
check(api.SetNodeArch(admin, node_a, "x86_64") == "x86_64" and api.GetNodeArch(admin, "a.utf.example.org") == "x86_64", "node accessors")
check(api.DeleteSite(admin, "utf") == 1, "DeleteSite")
check(api.GetSites(admin, ["utf"]) == [] and api.GetSites(admin, [site_id]) == [], "soft-deleted site never listed")
check(api.GetNodes(admin, [node_a]) == [], "nodes of a deleted site are gone")
fault(103, api.AuthCheck, pi)                                  # the PI belonged to no other site
check(api.DeleteNodeGroup(admin, ng) == 1 and api.DeleteTagType(admin, "test_ifname") == 1, "cleanup")

if failures:
    print("%d of %d checks failed" % (len(failures), checks))
    sys.exit(1)
print("OK %d checks" % checks)
