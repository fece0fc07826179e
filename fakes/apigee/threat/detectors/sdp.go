package detectors

import (
	"regexp"
	"strings"
)

// Kinds of the sdp (sensitive data protection) filter.
const (
	KindCreditCard = "credit_card"
	KindIBAN       = "iban"
	KindUSSSN      = "us_ssn"
	KindAPIKey     = "api_key"
	KindPrivateKey = "private_key"
	KindEmail      = "email"
	KindJWT        = "jwt"
)

var (
	ssnContext      = regexp.MustCompile(`(?i)\bssn\b|social\s+security|\bSSN#|\bsocial\s+sec\b|taxpayer|\bTIN\b|\bITIN\b`)
	notSSNContext   = regexp.MustCompile(`(?i)(?:order|invoice|ticket|ref(?:erence)?|tracking|part|serial|model|sku|case|id|no\.?|number|#|phone|tel|fax|zip|isbn|lot|batch|version|build)\W{0,4}$`)
	secretAssignKey = regexp.MustCompile(`(?i)(?:api[_-]?key|apikey|secret[_-]?key|client[_-]?secret|access[_-]?token|auth[_-]?token|bearer|password|passwd|pwd|token|secret)`)
	pemHeaderBefore = regexp.MustCompile(`-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----`)
	publicPEMBefore = regexp.MustCompile(`-----BEGIN (?:CERTIFICATE|PUBLIC KEY|RSA PUBLIC KEY|PGP PUBLIC KEY BLOCK|CERTIFICATE REQUEST)-----`)
)

// cardLevel confirms a payment card candidate: 13-19 digits, one kind of
// separator in card-like groups, the Luhn checksum, and an issuer prefix.
func cardLevel(w Window) Level {
	m := w.Match()
	var digits strings.Builder
	var sepChar byte
	var groups []int
	run := 0
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c >= '0' && c <= '9' {
			digits.WriteByte(c)
			run++
			continue
		}
		if sepChar == 0 {
			sepChar = c
		} else if c != sepChar {
			return None
		}
		groups = append(groups, run)
		run = 0
	}
	groups = append(groups, run)
	d := digits.String()
	if len(d) < 13 || len(d) > 19 || strings.Count(d, d[:1]) == len(d) {
		return None
	}
	if len(groups) > 1 && !cardGrouping(groups) {
		return None
	}
	if !Luhn(d) {
		return None
	}
	if CardBrand(d) != "" {
		return High
	}
	return Low
}

// cardGrouping accepts the groupings cards are printed in: 4-4-4-4(-3),
// 4-6-5 (Amex), 4-6-4 (Diners) and 4-4-4-1..4.
func cardGrouping(g []int) bool {
	switch len(g) {
	case 3:
		return g[0] == 4 && g[1] == 6 && (g[2] == 4 || g[2] == 5)
	case 4:
		return g[0] == 4 && g[1] == 4 && g[2] == 4 && g[3] >= 1 && g[3] <= 7
	case 5:
		return g[0] == 4 && g[1] == 4 && g[2] == 4 && g[3] == 4 && g[4] <= 3
	}
	return false
}

func ibanLevel(w Window) Level {
	if ValidIBAN(strings.ReplaceAll(w.Match(), " ", "")) {
		return High
	}
	return None
}

func ssnLevel(w Window) Level {
	m := w.Match()
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, m)
	if len(m) == 11 && m[3] != m[6] { // 123-45 6789: mixed separators
		return None
	}
	if !ValidSSN(digits) {
		return None
	}
	switch {
	case famousSSNs[digits]:
		return Low
	case ssnContext.MatchString(w.Text):
		return High
	case notSSNContext.MatchString(w.Before()):
		return Low
	case len(digits) == len(m): // nine bare digits: only with context
		return None
	}
	return Medium
}

// keyLevel confirms a provider key: HIGH unless it is a documented
// example or a placeholder.
func keyLevel(w Window) Level {
	m := w.Match()
	if placeholder(m) {
		return Low
	}
	return High
}

// openAIKeyLevel confirms sk-... keys, which look like many other things.
func openAIKeyLevel(w Window) Level {
	m := w.Match()
	body := m[strings.LastIndexByte(m, '-')+1:]
	if len(body) < 20 || placeholder(m) || !hasDigitAndLetter(body) || Entropy(body) < 3.5 {
		return None
	}
	return High
}

// assignedSecretLevel confirms api_key=... with a random-looking value.
func assignedSecretLevel(w Window) Level {
	m := w.Match()
	loc := secretAssignKey.FindStringIndex(m)
	if loc == nil {
		return None
	}
	v := strings.TrimLeft(m[loc[1]:], `"' :=>`+"\t")
	if len(v) < 16 || placeholder(v) || !hasDigitAndLetter(v) || Entropy(v) < 3.3 {
		return None
	}
	return Medium
}

func emailLevel(w Window) Level {
	m := strings.ToLower(w.Match())
	at := strings.LastIndexByte(m, '@')
	domain := m[at+1:]
	for _, doc := range []string{"example.com", "example.org", "example.net", "example", "test", "invalid", "localhost"} {
		if domain == doc || strings.HasSuffix(domain, "."+doc) {
			return Low
		}
	}
	return Medium
}

// pemBodyLevel confirms a 64-character base64 line of a private key: HIGH
// right under the BEGIN line, LOW further down, where only the previous line
// can be seen. Certificate and public-key bodies are left alone.
func pemBodyLevel(w Window) Level {
	before := w.Before()
	if i := strings.LastIndex(before, "-----BEGIN"); i >= 0 {
		if pemHeaderBefore.MatchString(before[i:]) {
			return High
		}
		if publicPEMBefore.MatchString(before[i:]) {
			return None
		}
	}
	return Low
}

func sdpRules(b *builder) {
	sdp := func(id, kind string) Rule {
		return Rule{ID: "sdp." + id, Filter: FilterSDP, Kind: kind, Context: 1, NotBefore: isAlnum, NotAfter: isAlnum}
	}
	card := sdp("credit-card", KindCreditCard)
	card.NotBefore, card.NotAfter, card.Confirm = isDigitOrSep, isAlnumOrDash, cardLevel
	b.add(card, `\d(?:[ -]?\d){12,18}`)

	iban := sdp("iban", KindIBAN)
	iban.Confirm = ibanLevel
	b.add(iban, `[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?`)

	ssn := sdp("us-ssn", KindUSSSN)
	ssn.Context, ssn.NotBefore, ssn.NotAfter, ssn.Confirm = 40, isDigitOrSep, isAlnumOrDash, ssnLevel
	b.add(ssn, `\d{3}[- ]\d{2}[- ]\d{4}|\d{9}`)

	for _, k := range []struct{ id, pattern string }{
		{"aws-access-key", `(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}`},
		{"github-token", `(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82}`},
		{"google-api-key", `AIza[0-9A-Za-z_\-]{35}`},
		{"slack-token", `xox[baprse]-[0-9A-Za-z\-]{10,72}`},
		{"slack-webhook", `https://hooks\.slack\.com/services/T[0-9A-Z]{8,12}/B[0-9A-Z]{8,12}/[0-9A-Za-z]{24}`},
		{"stripe-key", `(?:sk|rk)_live_[0-9A-Za-z]{16,99}`},
		{"huggingface-token", `hf_[A-Za-z0-9]{34}`},
	} {
		r := sdp(k.id, KindAPIKey)
		r.Confirm = keyLevel
		b.add(r, k.pattern)
	}
	awsSecret := sdp("aws-secret-key", KindAPIKey)
	awsSecret.NotBefore, awsSecret.Confirm = isWordByte, keyLevel
	b.add(awsSecret, `(?i)aws[\w\-]{0,20}(?:secret|sk)[\w\-]{0,20}["']?\s{0,3}[:=]{1,2}\s{0,3}["']?[A-Za-z0-9/+=]{40}`)

	openai := sdp("openai-key", KindAPIKey)
	openai.NotAfter = func(b byte) bool { return isAlnum(b) || b == '_' || b == '-' }
	openai.Confirm = openAIKeyLevel
	b.add(openai, `sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d{2}-)?[A-Za-z0-9_\-]{20,180}`)

	generic := sdp("assigned-secret", KindAPIKey)
	generic.NotBefore, generic.Confirm = isWordByte, assignedSecretLevel
	generic.NotAfter = func(b byte) bool { return isAlnum(b) || strings.IndexByte("_-./+=~", b) >= 0 }
	b.add(generic, `(?i)(?:api[_-]?key|apikey|secret[_-]?key|client[_-]?secret|access[_-]?token|auth[_-]?token|bearer|password|passwd|pwd|token|secret)["']?[ \t]{0,3}(?:[:=]|=>|[ \t])[ \t]{0,3}["']?[A-Za-z0-9_\-./+=~]{16,128}`)

	jwt := sdp("jwt", KindJWT)
	jwt.NotAfter = func(b byte) bool { return isAlnum(b) || b == '_' || b == '-' }
	jwt.Base = Low
	b.add(jwt, `eyJ[A-Za-z0-9_\-]{8,200}\.eyJ[A-Za-z0-9_\-]{8,300}\.[A-Za-z0-9_\-]{0,200}`)

	pem := Rule{ID: "sdp.private-key", Filter: FilterSDP, Kind: KindPrivateKey, Context: 1, Base: High}
	b.add(pem, `-----(?:BEGIN|END) (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----`)
	body := Rule{ID: "sdp.private-key-body", Filter: FilterSDP, Kind: KindPrivateKey, Context: 160, Confirm: pemBodyLevel,
		NotBefore: func(b byte) bool { return b != '\n' }, NotAfter: func(b byte) bool { return b != '\n' && b != '\r' }}
	b.add(body, `[A-Za-z0-9+/]{64}`)

	email := sdp("email", KindEmail)
	email.NotBefore = func(b byte) bool { return isAlnum(b) || strings.IndexByte("._%+-", b) >= 0 }
	email.NotAfter = isAlnumOrDash
	email.Confirm = emailLevel
	b.add(email, `[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,40}(?:\.[A-Za-z0-9\-]{1,40}){0,3}\.[A-Za-z]{2,24}`)
}
