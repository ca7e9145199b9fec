#!/usr/bin/env python3
"""Prints BootAuth test vectors as JSON: for each argument list, the XML-RPC
call Python's xmlrpc.client sends, the canonical message and the HMAC that
the original node manager's plcapi.py computes (its canonicalize logic is
copied here verbatim in behaviour: lists/tuples recurse, dicts contribute
their values only, every other leaf becomes str(); the leaves are sorted)."""
import hmac, json, sys, xmlrpc.client
from hashlib import sha1

KEY = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"

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

def sign(args):
    values = canonicalize(args)
    values.sort()
    msg = "[" + "".join(values) + "]"
    return msg, hmac.new(KEY.encode("utf-8"), msg.encode("utf-8"), sha1).hexdigest()

CASES = [
    (),
    ({},),
    (None,),
    (1, "a", True, False, None),
    ({"boot_state": "boot", "ssh_host_key": "ssh-rsa AAAA x@y"},),
    ({"primary_network": {"interface_id": 3, "mac": "aa:bb", "bwlimit": None}, "boot_state": "safeboot"},),
    ([1, [2, [3, ["deep"]]]], {"a": [True, 0.5]}),
    (1.0, 1e16, 0.1, 1e-05, 123456789.5, -0.0, 2.5e-300, 45.0),
    ("héllo wörld ☺", "Z", "a", "B", "ä", "日本"),
    ({"run_level": "boot"}, "node.example.org"),
    ([],),
    (-2147483648, 2147483647, 0),
]

out = []
for args in CASES:
    msg, mac = sign(args)
    xml = xmlrpc.client.dumps(({"AuthMethod": "hmac", "node_id": 7, "value": mac},) + tuple(args), "GetSlivers", allow_none=True)
    out.append({"xml": xml, "msg": msg, "hmac": mac})
json.dump({"key": KEY, "cases": out}, sys.stdout)
