package xmlrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func call(params string) string {
	return "<?xml version='1.0'?><methodCall><methodName>M</methodName><params>" + params + "</params></methodCall>"
}

func TestDecodeCallValues(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  any
	}{
		{"nil", "<value><nil/></value>", nil},
		{"ex:nil", "<value><ex:nil xmlns:ex='http://ws.apache.org/xmlrpc/namespaces/extensions'/></value>", nil},
		{"int", "<value><int> 42 </int></value>", int64(42)},
		{"i4 neg", "<value><i4>-2147483648</i4></value>", int64(math.MinInt32)},
		{"i8", "<value><i8>9007199254740993</i8></value>", int64(9007199254740993)},
		{"true", "<value><boolean>1</boolean></value>", true},
		{"false", "<value><boolean>0</boolean></value>", false},
		{"double", "<value><double>45.5</double></value>", 45.5},
		{"string", "<value><string>h&amp;é&#x263A;</string></value>", "h&é☺"},
		{"empty string", "<value><string/></value>", ""},
		{"untyped", "<value>  bare text </value>", "  bare text "},
		{"untyped empty", "<value></value>", ""},
		{"cdata", "<value><string><![CDATA[<x>]]></string></value>", "<x>"},
		{"array", "<value><array><data><value><int>1</int></value><value>a</value></data></array></value>", []any{int64(1), "a"}},
		{"empty array", "<value><array><data/></array></value>", []any{}},
		{"struct", "<value><struct><member><name>a</name><value><nil/></value></member><member><name>b</name><value><array><data/></array></value></member></struct></value>",
			map[string]any{"a": nil, "b": []any{}}},
		{"dup member last wins", "<value><struct><member><name>a</name><value>1</value></member><member><name>a</name><value>2</value></member></struct></value>",
			map[string]any{"a": "2"}},
		{"datetime", "<value><dateTime.iso8601>20260101T00:00:00</dateTime.iso8601></value>", DateTime("20260101T00:00:00")},
		{"base64", "<value><base64>aGk=</base64></value>", []byte("hi")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCall(strings.NewReader(call("<param>"+tt.value+"</param>")), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Method != "M" || len(c.Params) != 1 {
				t.Fatalf("got %+v", c)
			}
			if !reflect.DeepEqual(c.Params[0], tt.want) {
				t.Fatalf("got %#v, want %#v", c.Params[0], tt.want)
			}
		})
	}
}

func TestDecodeCallNoParams(t *testing.T) {
	for _, doc := range []string{
		"<methodCall><methodName>system.listMethods</methodName></methodCall>",
		"<?xml version='1.0' encoding='iso-8859-1'?>\n<!-- c --><methodCall><methodName>system.listMethods</methodName><params/></methodCall>\n",
	} {
		c, err := DecodeCall(strings.NewReader(doc), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if c.Method != "system.listMethods" || len(c.Params) != 0 {
			t.Fatalf("got %+v", c)
		}
	}
}

func TestDecodeLatin1(t *testing.T) {
	doc := []byte("<?xml version='1.0' encoding='iso-8859-1'?><methodCall><methodName>M</methodName><params><param><value>caf\xe9</value></param></params></methodCall>")
	c, err := DecodeCall(bytes.NewReader(doc), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Params[0] != "café" {
		t.Fatalf("got %q", c.Params[0])
	}
}

// TestDecodeTooLargeLatin1 checks that the size limit counts the body's
// bytes, before the Latin-1 decoder widens them, also when the excess comes
// after the root element.
func TestDecodeTooLargeLatin1(t *testing.T) {
	latin1 := func(params string) string {
		return "<?xml version='1.0' encoding='iso-8859-1'?><methodCall><methodName>M</methodName><params>" + params + "</params></methodCall>"
	}
	if _, err := DecodeCall(strings.NewReader(latin1("")+"<!---->"), Limits{MaxBytes: 1000}); err != nil {
		t.Fatalf("small document: %v", err)
	}
	for name, doc := range map[string]string{
		"value":   latin1("<param><value>" + strings.Repeat("\xe9", 2000) + "</value></param>"),
		"trailer": latin1("") + "<!--" + strings.Repeat("\xe9", 2000) + "-->",
	} {
		_, err := DecodeCall(strings.NewReader(doc), Limits{MaxBytes: 1000})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: got %v, want ErrTooLarge", name, err)
		}
	}
}

func TestDecodeCallErrors(t *testing.T) {
	deep := strings.Repeat("<value><array><data>", 70) + strings.Repeat("</data></array></value>", 70)
	many := strings.Repeat("<value>x</value>", 130)
	tests := []struct {
		name, doc, want string
	}{
		{"empty", "", "unexpected end"},
		{"not xml", "hello", "unexpected text"},
		{"garbage", "<<<", "malformed XML"},
		{"wrong root", "<methodResponse/>", "expected <methodCall>"},
		{"no name", "<methodCall><params/></methodCall>", "expected <methodName>"},
		{"empty name", "<methodCall><methodName> </methodName></methodCall>", "empty <methodName>"},
		{"unclosed", "<methodCall><methodName>M</methodName><params>", "unexpected EOF"},
		{"trailing", call("") + "<x/>", "content after"},
		{"doctype", "<!DOCTYPE x [<!ENTITY a 'b'>]><methodCall/>", "directives"},
		{"entity", call("<param><value>&a;</value></param>"), "malformed XML"},
		{"int range", call("<param><value><int>2147483648</int></value></param>"), "32-bit"},
		{"int junk", call("<param><value><int>1.5</int></value></param>"), "bad <int>"},
		{"bool", call("<param><value><boolean>true</boolean></value></param>"), "bad boolean"},
		{"nan", call("<param><value><double>nan</double></value></param>"), "bad <double>"},
		{"inf", call("<param><value><double>inf</double></value></param>"), "bad <double>"},
		{"unknown type", call("<param><value><float>1</float></value></param>"), "unknown value type"},
		{"mixed", call("<param><value>x<int>1</int></value></param>"), "text mixed"},
		{"two types", call("<param><value><int>1</int><int>2</int></value></param>"), "unexpected element"},
		{"nil content", call("<param><value><nil>x</nil></value></param>"), "<nil/> must be empty"},
		{"member no name", call("<param><value><struct><member><value>1</value></member></struct></value></param>"), "expected <name>"},
		{"array no data", call("<param><value><array><value>1</value></array></value></param>"), "expected <data>"},
		{"text in params", call("x<param><value>1</value></param>"), "unexpected text"},
		{"bad base64", call("<param><value><base64>!!</base64></value></param>"), "bad <base64>"},
		{"deep", call("<param>" + deep + "</param>"), "nested deeper than 64"},
		{"many", call("<param><value><array><data>" + many + "</data></array></value></param>"), "more than 100 values"},
		{"bad utf8", "<methodCall><methodName>\xff</methodName></methodCall>", "malformed XML"},
		{"control char", call("<param><value>&#1;</value></param>"), "malformed XML"},
		{"encoding", "<?xml version='1.0' encoding='ebcdic'?><methodCall/>", "malformed XML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCall(strings.NewReader(tt.doc), Limits{MaxValues: 100})
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *DecodeError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	doc := call("<param><value>" + strings.Repeat("a", 2000) + "</value></param>")
	_, err := DecodeCall(strings.NewReader(doc), Limits{MaxBytes: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if _, err := DecodeCall(strings.NewReader(doc), Limits{MaxBytes: int64(len(doc))}); err != nil {
		t.Fatalf("body of exactly MaxBytes: %v", err)
	}
}

func TestEncodeResponse(t *testing.T) {
	type rec map[string]any // a named map type, like core.Record
	v := []any{nil, true, 7, int64(1) << 40, 1.0, "a<&>\x01\x1f\x7f\r\n\t\uffff", []int64{1, 2}, rec{"b": 1, "a": []rec{{"x": nil}}}, []string(nil), (*string)(nil)}
	got, err := EncodeResponse(v)
	if err != nil {
		t.Fatal(err)
	}
	want := "<?xml version='1.0' encoding='utf-8'?>\n<methodResponse>\n<params>\n<param>\n" +
		"<value><array><data>\n<value><nil/></value>\n<value><boolean>1</boolean></value>\n<value><int>7</int></value>\n" +
		"<value><int>1099511627776</int></value>\n<value><double>1.0</double></value>\n" +
		"<value><string>a&lt;&amp;&gt;??\x7f&#13;\n\t?</string></value>\n" +
		"<value><array><data>\n<value><int>1</int></value>\n<value><int>2</int></value>\n</data></array></value>\n" +
		"<value><struct>\n<member>\n<name>a</name>\n<value><array><data>\n<value><struct>\n<member>\n<name>x</name>\n<value><nil/></value>\n</member>\n</struct></value>\n</data></array></value>\n</member>\n" +
		"<member>\n<name>b</name>\n<value><int>1</int></value>\n</member>\n</struct></value>\n" +
		"<value><array><data>\n</data></array></value>\n<value><nil/></value>\n" +
		"</data></array></value>\n</param>\n</params>\n</methodResponse>\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := EncodeResponse(math.NaN()); err == nil {
		t.Fatal("NaN encoded")
	}
	if _, err := EncodeResponse(map[int]int{1: 1}); err == nil {
		t.Fatal("int-keyed map encoded")
	}
}

func TestFaultRoundTrip(t *testing.T) {
	doc := EncodeFault(102, "x: <y>")
	_, err := DecodeResponse(bytes.NewReader(doc), Limits{})
	var f *Fault
	if !errors.As(err, &f) || f.Code != 102 || f.String != "x: <y>" {
		t.Fatalf("got %v", err)
	}
	doc, _ = EncodeResponse(map[string]any{"a": []any{1.5}})
	v, err := DecodeResponse(bytes.NewReader(doc), Limits{})
	if err != nil || !reflect.DeepEqual(v, map[string]any{"a": []any{1.5}}) {
		t.Fatalf("got %v %v", v, err)
	}
}

func TestPyReprFixed(t *testing.T) {
	for f, want := range map[float64]string{
		1.0: "1.0", 1e16: "1e+16", 1e15: "1000000000000000.0", 0.1: "0.1", 0.0001: "0.0001",
		0.00001: "1e-05", -2.5: "-2.5", 0: "0.0", 123456789.5: "123456789.5", 1.5e300: "1.5e+300",
		5e-324: "5e-324", 1.7976931348623157e308: "1.7976931348623157e+308", 45: "45.0", 1e22: "1e+22",
		9999999999999998: "9999999999999998.0", 0.30000000000000004: "0.30000000000000004",
	} {
		if got := PyRepr(f); got != want {
			t.Errorf("PyRepr(%v) = %q, want %q", f, got, want)
		}
	}
	if got := PyRepr(math.Copysign(0, -1)); got != "-0.0" {
		t.Errorf("PyRepr(-0) = %q", got)
	}
}

// TestPyReprPython compares PyRepr with python3's repr on random floats.
func TestPyReprPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: cannot compare with Python's repr")
	}
	rng := rand.New(rand.NewSource(1))
	var fs []float64
	for i := 0; i < 3000; i++ {
		switch i % 3 {
		case 0:
			fs = append(fs, math.Float64frombits(rng.Uint64()))
		case 1:
			fs = append(fs, rng.NormFloat64()*math.Pow(10, float64(rng.Intn(40)-20)))
		default:
			fs = append(fs, float64(rng.Intn(100000))/math.Pow(10, float64(rng.Intn(8))))
		}
	}
	var in strings.Builder
	var keep []float64
	for _, f := range fs {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		keep = append(keep, f)
		in.WriteString(strconv.FormatUint(math.Float64bits(f), 10) + "\n")
	}
	// hostdeps: python3
	cmd := exec.Command(py, "-c", `import sys,struct,json
print(json.dumps([repr(struct.unpack('<d', struct.pack('<Q', int(l)))[0]) for l in sys.stdin]))`)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for i, f := range keep {
		if got := PyRepr(f); got != want[i] {
			t.Errorf("PyRepr(%b) = %q, python says %q", f, got, want[i])
		}
	}
}

// TestPythonReadsOurResponses feeds an encoded response to Python's
// xmlrpc.client.loads and compares what it sees.
func TestPythonReadsOurResponses(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	v := map[string]any{"n": nil, "b": false, "i": 1 << 40, "f": 0.1, "s": "é\x00<", "l": []any{int64(-3), "x"}}
	doc, err := EncodeResponse(v)
	if err != nil {
		t.Fatal(err)
	}
	// hostdeps: python3
	cmd := exec.Command(py, "-c", `import sys,xmlrpc.client,json
(v,), m = xmlrpc.client.loads(sys.stdin.buffer.read(), use_builtin_types=True)
print(json.dumps(v, sort_keys=True))`)
	cmd.Stdin = bytes.NewReader(doc)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := `{"b": false, "f": 0.1, "i": 1099511627776, "l": [-3, "x"], "n": null, "s": "\u00e9?<"}`
	if strings.TrimSpace(string(out)) != want {
		t.Fatalf("python read %s, want %s", out, want)
	}
}

// TestWeReadPythonCalls decodes a call produced by Python's dumps.
func TestWeReadPythonCalls(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	// hostdeps: python3
	cmd := exec.Command(py, "-c", `import sys,xmlrpc.client
sys.stdout.write(xmlrpc.client.dumps(({'AuthMethod':'password','x':[1,2.5,True,None,'é']},), 'GetNodes', allow_none=True))`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCall(bytes.NewReader(out), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{map[string]any{"AuthMethod": "password", "x": []any{int64(1), 2.5, true, nil, "é"}}}
	if c.Method != "GetNodes" || !reflect.DeepEqual(c.Params, want) {
		t.Fatalf("got %#v", c)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(call("<param><value><struct><member><name>a</name><value><array><data><value><i4>1</i4></value><value><double>1.5</double></value><value><nil/></value></data></array></value></member></struct></value></param>")))
	f.Add([]byte(call("<param><value>x&amp;</value></param><param><value><boolean>1</boolean></value></param>")))
	f.Add([]byte(call("<param><value><base64>aGk=</base64></value></param><param><value><dateTime.iso8601>x</dateTime.iso8601></value></param>")))
	f.Add([]byte("<methodCall><methodName>m</methodName></methodCall>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCall(bytes.NewReader(data), Limits{MaxBytes: 1 << 16, MaxDepth: 16, MaxValues: 1000})
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			return
		}
		doc, err := EncodeCall(c.Method, c.Params...)
		if err != nil {
			t.Fatalf("encode of decoded %#v: %v", c, err)
		}
		c2, err := DecodeCall(bytes.NewReader(doc), Limits{MaxBytes: 1 << 20, MaxDepth: 16, MaxValues: 1000})
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, doc)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the call:\n%#v\n%#v", c, c2)
		}
	})
}

// record is a named map type, as core.Record.
type record map[string]any

// BenchmarkEncodeRecords encodes 1,000 node-like structs of 31 fields (the
// shape of GetNodes with every field).
func BenchmarkEncodeRecords(b *testing.B) {
	recs := make([]record, 1000)
	for i := range recs {
		r := record{}
		for j := 0; j < 10; j++ {
			r[fmt.Sprintf("int_field_%02d", j)] = int64(i * j)
			r[fmt.Sprintf("str_field_%02d", j)] = fmt.Sprintf("node%04d.site%02d.example.org", i, j)
		}
		for j := 0; j < 6; j++ {
			r[fmt.Sprintf("ids_field_%02d", j)] = []int64{int64(i), int64(i + 1), int64(i + 2)}
		}
		r["nil_a"], r["nil_b"], r["flag_a"], r["flag_b"], r["float"] = nil, nil, true, false, 1.5
		recs[i] = r
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := EncodeResponse(recs); err != nil {
			b.Fatal(err)
		}
	}
}
