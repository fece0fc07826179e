package detectors

import (
	"math"
	"strings"
)

// Luhn reports whether the digits pass the Luhn checksum.
func Luhn(digits string) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return len(digits) > 0 && sum%10 == 0
}

// CardBrand returns the card scheme whose issuer identification number
// (IIN) range and length the digits fit, or "".
func CardBrand(digits string) string {
	n := len(digits)
	prefix := func(k int) int {
		v := 0
		for i := 0; i < k && i < n; i++ {
			v = v*10 + int(digits[i]-'0')
		}
		return v
	}
	p2, p3, p4, p6 := prefix(2), prefix(3), prefix(4), prefix(6)
	switch {
	case digits[0] == '4' && (n == 13 || n == 16 || n == 19):
		return "visa"
	case (p2 >= 51 && p2 <= 55 || p4 >= 2221 && p4 <= 2720) && n == 16:
		return "mastercard"
	case (p2 == 34 || p2 == 37) && n == 15:
		return "amex"
	case (p4 == 6011 || p3 >= 644 && p3 <= 649 || p2 == 65 || p6 >= 622126 && p6 <= 622925) && n >= 16 && n <= 19:
		return "discover"
	case p4 >= 3528 && p4 <= 3589 && n >= 16 && n <= 19:
		return "jcb"
	case (p3 >= 300 && p3 <= 305 || p2 == 36 || p2 == 38 || p2 == 39) && n >= 14 && n <= 19:
		return "diners"
	case p2 == 62 && n >= 16 && n <= 19:
		return "unionpay"
	case (p2 == 50 || p2 >= 56 && p2 <= 58 || p2 == 67) && n >= 12 && n <= 19:
		return "maestro"
	}
	return ""
}

// ibanLengths is the IBAN length of each country (SWIFT IBAN registry).
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
	"MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
	"RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// ValidIBAN checks an IBAN without spaces: the country's length and the
// ISO 7064 mod-97 check digits.
func ValidIBAN(iban string) bool {
	if len(iban) < 5 {
		return false
	}
	want, ok := ibanLengths[iban[:2]]
	if !ok || len(iban) != want {
		return false
	}
	rearranged := iban[4:] + iban[:4]
	rem := 0
	for i := 0; i < len(rearranged); i++ {
		c := rearranged[i]
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A') + 10) % 97
		default:
			return false
		}
	}
	return rem == 1
}

// ValidSSN applies the Social Security Administration's rules to a
// nine-digit number: the area is not 000, 666 or 900-999, the group not 00
// and the serial not 0000.
func ValidSSN(digits string) bool {
	if len(digits) != 9 {
		return false
	}
	area, group, serial := digits[:3], digits[3:5], digits[5:]
	if area == "000" || area == "666" || area[0] == '9' || group == "00" || serial == "0000" {
		return false
	}
	return true
}

// famousSSNs are numbers printed in advertising and documentation, which
// people use as examples.
var famousSSNs = map[string]bool{"078051120": true, "219099999": true, "123456789": true, "111111111": true}

// Entropy returns the Shannon entropy of s in bits per byte.
func Entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(s))
			h -= p * math.Log2(p)
		}
	}
	return h
}

// placeholder reports whether a secret-looking value is obviously a
// placeholder: "your_api_key_here", "xxxxxxxx", "<TOKEN>", "${API_KEY}",
// "sk-...EXAMPLE".
func placeholder(v string) bool {
	l := strings.ToLower(v)
	for _, w := range []string{"example", "your", "xxxx", "placeholder", "changeme", "redacted", "dummy", "sample", "test_key", "insert", "replace", "here", "<", "${", "{{", "****", "0000000", "1234567", "abcdefg"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

func hasDigitAndLetter(s string) bool {
	d, l := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			d = true
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			l = true
		}
	}
	return d && l
}
