package xmlrpc

import (
	"math"
	"strconv"
	"strings"
)

// PyRepr formats f exactly as Python 3's repr(float) (and str(float)): the
// shortest digits that round-trip, in fixed notation when the decimal
// exponent is in [-4, 16) and in scientific notation (two-digit minimum
// exponent, explicit sign) otherwise; fixed notation always has a
// fractional part ("1.0"). Examples: 1.0 -> "1.0", 1e16 -> "1e+16",
// 0.0001 -> "0.0001", 1e-05 -> "1e-05", 123456789.5 -> "123456789.5".
// Python's xmlrpc.client writes doubles with repr, and PLCAPI's BootAuth
// HMAC hashes str() of every argument, so both must match byte for byte.
func PyRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	// Shortest round-trip digits and exponent: d.ddddde±XX.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, exps, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(exps)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1 // value = 0.digits * 10^decpt
	if f == 0 {
		return sign + "0.0"
	}
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			return sign + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			return sign + digits[:decpt] + "." + digits[decpt:]
		}
	}
	m := digits[:1]
	if len(digits) > 1 {
		m += "." + digits[1:]
	}
	es := "+"
	if exp < 0 {
		es, exp = "-", -exp
	}
	x := strconv.Itoa(exp)
	if len(x) < 2 {
		x = "0" + x
	}
	return sign + m + "e" + es + x
}
