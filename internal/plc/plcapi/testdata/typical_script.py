#!/usr/bin/env python3
"""A typical PlanetLab script written for the original PLCAPI: authenticate
with a password, list nodes, create a slice at the caller's site, add
persons and nodes, set slice tags, renew it, delete it. Between steps it
asks, as the node manager of one node would (BootAuth HMAC), for GetSlivers
and checks that the node sees the step.

Environment: PLC_URL, PLC_CAFILE, PLC_USER, PLC_PASSWORD, PLC_MEMBER (email
of a person to add), PLC_NODE_ID, PLC_NODE_KEY."""
import hmac, os, ssl, sys, time, xmlrpc.client
from hashlib import sha1

ctx = ssl.create_default_context(cafile=os.environ["PLC_CAFILE"])
ctx.check_hostname = False
plc = xmlrpc.client.ServerProxy(os.environ["PLC_URL"], allow_none=True, context=ctx)
auth = {"AuthMethod": "password", "Username": os.environ["PLC_USER"], "AuthString": os.environ["PLC_PASSWORD"]}

NODE_ID, NODE_KEY = int(os.environ["PLC_NODE_ID"]), os.environ["PLC_NODE_KEY"]


def canonicalize(args):  # the node manager's plcapi.py
    values = []
    for arg in args:
        if isinstance(arg, list) or isinstance(arg, tuple):
            values += canonicalize(arg)
        elif isinstance(arg, dict):
            values += canonicalize(list(arg.values()))
        else:
            values.append(str(arg))
    return values


def node_auth(*args):
    values = canonicalize(args)
    values.sort()
    msg = "[" + "".join(values) + "]"
    return {"AuthMethod": "hmac", "node_id": NODE_ID,
            "value": hmac.new(NODE_KEY.encode("utf-8"), msg.encode("utf-8"), sha1).hexdigest()}


def node_sees(name):
    for s in plc.GetSlivers(node_auth())["slivers"]:
        if s["name"] == name:
            return s
    return None


def expect(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


# 1. authenticate and list nodes
expect(plc.AuthCheck(auth) == 1, "password authentication")
nodes = plc.GetNodes(auth, {"boot_state": "reinstall"}, ["node_id", "hostname"])
expect(NODE_ID in [n["node_id"] for n in nodes], "GetNodes lists %d nodes" % len(nodes))

# 2. create a slice at my site
me = plc.GetPersons(auth, [auth["Username"]], ["person_id", "site_ids"])[0]
site = plc.GetSites(auth, me["site_ids"][:1], ["login_base"])[0]
name = site["login_base"] + "_typical"
slice_id = plc.AddSlice(auth, {"name": name, "url": "http://www.example.org/typical",
                               "description": "a typical PlanetLab slice"})
expect(slice_id > 0, "AddSlice %s" % name)
expect(node_sees(name) is None, "not on the node before AddSliceToNodes")

# 3. add persons and nodes
plc.AddPersonToSlice(auth, os.environ["PLC_MEMBER"], name)
plc.AddSliceToNodes(auth, name, [n["hostname"] for n in nodes])
s = node_sees(name)
expect(s is not None and s["slice_id"] == slice_id, "node sees the sliver")
expect(len(s["keys"]) == 1 and s["keys"][0]["key_type"] == "ssh", "sliver carries the member's key")

# 4. set slice tags
plc.AddSliceTag(auth, name, "vref", "f39")
plc.AddSliceTag(auth, name, "vsys", "pl_netflow")
plc.AddSliceTag(auth, name, "vsys", "fd_tuntap")
tags = sorted((a["tagname"], a["value"]) for a in node_sees(name)["attributes"])
expect(("vref", "f39") in tags and ("vsys", "pl_netflow") in tags and ("vsys", "fd_tuntap") in tags, "node sees the tags %r" % tags)
expect(node_sees(name)["GetSliceFamily"].startswith("f39-"), "slice family follows vref")

# 5. renew
expires = int(time.time()) + 6 * 7 * 24 * 3600
plc.UpdateSlice(auth, name, {"expires": expires})
expect(plc.GetSlices(auth, [name], ["expires"])[0]["expires"] == expires, "renewed")
expect(node_sees(name)["expires"] == expires, "node sees the new expiry")

# 6. delete
plc.DeleteSlice(auth, name)
expect(plc.GetSlices(auth, [name]) == [], "slice gone")
expect(node_sees(name) is None, "node drops the sliver")
print("typical script done")
