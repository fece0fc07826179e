package detectors

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// decodePunycode decodes the part of an IDNA label after "xn--"
// (RFC 3492, section 6.2).
func decodePunycode(s string) (string, error) {
	const (
		base, tmin, tmax, skew, damp = 36, 1, 26, 38, 700
		initialBias, initialN        = 72, 128
	)
	var out []rune
	basic := ""
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		basic, s = s[:i], s[i+1:]
	}
	for _, r := range basic {
		if r >= utf8.RuneSelf {
			return "", errors.New("punycode: non-ASCII basic code point")
		}
		out = append(out, r)
	}
	n, bias, i := initialN, initialBias, 0
	adapt := func(delta, numPoints int, first bool) int {
		if first {
			delta /= damp
		} else {
			delta /= 2
		}
		delta += delta / numPoints
		k := 0
		for delta > ((base-tmin)*tmax)/2 {
			delta /= base - tmin
			k += base
		}
		return k + (base-tmin+1)*delta/(delta+skew)
	}
	for pos := 0; pos < len(s); {
		oldi, w := i, 1
		for k := base; ; k += base {
			if pos >= len(s) {
				return "", errors.New("punycode: truncated")
			}
			c := s[pos]
			pos++
			var digit int
			switch {
			case c >= 'a' && c <= 'z':
				digit = int(c - 'a')
			case c >= 'A' && c <= 'Z':
				digit = int(c - 'A')
			case c >= '0' && c <= '9':
				digit = int(c-'0') + 26
			default:
				return "", errors.New("punycode: bad digit")
			}
			i += digit * w
			if i < 0 || i > 1<<24 {
				return "", errors.New("punycode: overflow")
			}
			t := k - bias
			if t < tmin {
				t = tmin
			} else if t > tmax {
				t = tmax
			}
			if digit < t {
				break
			}
			w *= base - t
			if w > 1<<24 {
				return "", errors.New("punycode: overflow")
			}
		}
		bias = adapt(i-oldi, len(out)+1, oldi == 0)
		n += i / (len(out) + 1)
		i %= len(out) + 1
		if n > utf8.MaxRune || len(out) > 63 {
			return "", errors.New("punycode: out of range")
		}
		out = append(out, 0)
		copy(out[i+1:], out[i:])
		out[i] = rune(n)
		i++
	}
	return string(out), nil
}
