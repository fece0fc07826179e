package detectors

import "testing"

func TestChecks(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		digits, brand string
		luhn          bool
	}{
		{"4111111111111111", "visa", true}, {"4111111111111112", "visa", false}, {"5500000000000004", "mastercard", true},
		{"2223003122003222", "mastercard", true}, {"378282246310005", "amex", true}, {"6011111111111117", "discover", true},
		{"3530111333300000", "jcb", true}, {"30569309025904", "diners", true}, {"6200000000000005", "unionpay", true},
		{"1234567812345670", "", true},
	} {
		if got := Luhn(c.digits); got != c.luhn {
			t.Errorf("Luhn(%s) = %v", c.digits, got)
		}
		if got := CardBrand(c.digits); got != c.brand {
			t.Errorf("CardBrand(%s) = %q, want %q", c.digits, got, c.brand)
		}
	}
	for iban, want := range map[string]bool{
		"DE89370400440532013000": true, "GB82WEST12345698765432": true, "FR1420041010050500013M02606": true,
		"DE89370400440532013001": false, "DE8937040044053201300": false, "XX89370400440532013000": false, "de89370400440532013000": false,
	} {
		if got := ValidIBAN(iban); got != want {
			t.Errorf("ValidIBAN(%s) = %v", iban, got)
		}
	}
	for ssn, want := range map[string]bool{"219551234": true, "000551234": false, "666551234": false, "912551234": false, "219001234": false, "219550000": false} {
		if got := ValidSSN(ssn); got != want {
			t.Errorf("ValidSSN(%s) = %v", ssn, got)
		}
	}
	if e := Entropy("aaaaaaaa"); e != 0 {
		t.Errorf("Entropy(aaaa) = %v", e)
	}
	if e := Entropy("9f8e7d6c5b4a39281706f5e4d3c2b1a0"); e < 3.5 {
		t.Errorf("Entropy(hex) = %v", e)
	}
}

func TestDecodePunycode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"mnchen-3ya": "münchen", "pple-43d": "аpple", "r8jz45g": "例え", "bcher-kva": "bücher"} {
		got, err := decodePunycode(in)
		if err != nil || got != want {
			t.Errorf("decodePunycode(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ab-!!", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "é-a"} {
		if _, err := decodePunycode(bad); err == nil {
			t.Errorf("decodePunycode(%q) succeeded", bad)
		}
	}
}

func TestURILevel(t *testing.T) {
	t.Parallel()
	c := newURIChecker()
	tests := []struct {
		uri  string
		want Level
	}{
		{"https://testsafebrowsing.appspot.com/s/malware.html", High},
		{"https://testsafebrowsing.appspot.com/", None},
		{"http://sub.evil.example/x", High},
		{"http://paypal.com@evil.example/", High},
		{"http://user:pass@host.example.org/", Medium},
		{"http://3232235777/", High},
		{"http://0x7f.0.0.1/", High},
		{"http://127.0.0.1:8080/", None},
		{"http://203.0.113.9/", Low},
		{"http://203.0.113.9/a.exe", High},
		{"http://xn--mnchen-3ya.de/", Low},
		{"http://xn--pple-43d.com/", High},
		{"http://pаypal.com/", High},
		{"http://x.tk/", Medium},
		{"http://x.tk/setup.exe", High},
		{"https://github.com/o/r/releases/download/v1/tool.exe", Low},
		{"https://paypal.com.account.verify.example/", High},
		{"https://paypal-login.example/", High},
		{"https://accounts.google.com/", None},
		{"https://bit.ly/abc", Low},
		{"hxxp://evil[.]example/", Low},
		{"javascript:alert(1)", High},
		{"javascript:void(0)", Low},
		{"data:text/html;base64,AAAA", High},
		{"data:image/png;base64,AAAA", None},
		{"www.google.com", None},
	}
	for _, tt := range tests {
		if got := c.Level(tt.uri); got != tt.want {
			t.Errorf("Level(%q) = %v, want %v", tt.uri, got, tt.want)
		}
	}
}
