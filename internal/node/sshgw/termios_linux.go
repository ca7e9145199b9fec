package sshgw

import (
	"os"

	"golang.org/x/sys/unix"
)

// Terminal mode opcodes of RFC 4254 §8 mapped to Linux termios.
var (
	ccModes = map[uint8]int{
		1: unix.VINTR, 2: unix.VQUIT, 3: unix.VERASE, 4: unix.VKILL, 5: unix.VEOF,
		6: unix.VEOL, 7: unix.VEOL2, 8: unix.VSTART, 9: unix.VSTOP, 10: unix.VSUSP,
		12: unix.VREPRINT, 13: unix.VWERASE, 14: unix.VLNEXT, 18: unix.VDISCARD,
	}
	iflagModes = map[uint8]uint32{
		30: unix.IGNPAR, 31: unix.PARMRK, 32: unix.INPCK, 33: unix.ISTRIP, 34: unix.INLCR,
		35: unix.IGNCR, 36: unix.ICRNL, 37: unix.IUCLC, 38: unix.IXON, 39: unix.IXANY,
		40: unix.IXOFF, 41: unix.IMAXBEL, 42: unix.IUTF8,
	}
	lflagModes = map[uint8]uint32{
		50: unix.ISIG, 51: unix.ICANON, 52: unix.XCASE, 53: unix.ECHO, 54: unix.ECHOE,
		55: unix.ECHOK, 56: unix.ECHONL, 57: unix.NOFLSH, 58: unix.TOSTOP, 59: unix.IEXTEN,
		60: unix.ECHOCTL, 61: unix.ECHOKE, 62: unix.PENDIN,
	}
	oflagModes = map[uint8]uint32{
		70: unix.OPOST, 71: unix.OLCUC, 72: unix.ONLCR, 73: unix.OCRNL, 74: unix.ONOCR, 75: unix.ONLRET,
	}
	cflagModes = map[uint8]uint32{
		90: unix.CS7, 91: unix.CS8, 92: unix.PARENB, 93: unix.PARODD,
	}
)

// applyModes sets the client's terminal modes on the terminal f. Unknown
// opcodes are ignored, as RFC 4254 allows; speeds are not applied (a pty
// has no line speed that matters).
func applyModes(f *os.File, modes []termMode) error {
	if len(modes) == 0 {
		return nil
	}
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return err
	}
	set := func(flags *uint32, bit uint32, on bool) {
		if on {
			*flags |= bit
		} else {
			*flags &^= bit
		}
	}
	for _, m := range modes {
		on := m.Val != 0
		if i, ok := ccModes[m.Op]; ok {
			t.Cc[i] = uint8(m.Val)
		} else if bit, ok := iflagModes[m.Op]; ok {
			set(&t.Iflag, bit, on)
		} else if bit, ok := lflagModes[m.Op]; ok {
			set(&t.Lflag, bit, on)
		} else if bit, ok := oflagModes[m.Op]; ok {
			set(&t.Oflag, bit, on)
		} else if bit, ok := cflagModes[m.Op]; ok {
			if m.Op == 90 || m.Op == 91 { // character size is a field, not a bit
				if on {
					t.Cflag = t.Cflag&^unix.CSIZE | bit
				}
			} else {
				set(&t.Cflag, bit, on)
			}
		}
	}
	return unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
}
