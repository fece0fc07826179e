package detectors

import (
	"encoding/base64"
	"regexp"
	"strings"
)

// Kinds of the pi_and_jailbreak filter.
const (
	KindPromptInjection = "prompt_injection"
	KindJailbreak       = "jailbreak"
)

// adjectives name the instructions an injection wants dropped.
const adjectives = `(?:previous|prior|above|earlier|preceding|former|foregoing|initial|original|system|developer|hidden|default)`

// promptContext is how far around a phrase the prompt rules look for words
// that change its meaning ("attackers write ...", "developer mode on my
// Android phone").
const promptContext = 120

// Words that mark a text as talking about an attack rather than making one.
// A strong cue lowers a phrase two levels, a weak one a level, quotes around
// the phrase one more: a security essay that quotes "ignore previous
// instructions" as an example passes, a bare instruction does not. The price
// is that an attacker who dresses an injection up as a discussion of
// injections can lower its level too.
var (
	strongCue = regexp.MustCompile(`(?i)prompt[\s-]?injections?|jailbreak(?:ing)?\s+(?:attacks?|attempts?|prompts?|techniques?|examples?)|injection\s+attacks?|\battackers\b|\ban\s+attacker\b|adversar(?:y|ial)|red[\s-]?team|\bexamples?\s+of\b|\bsuch\s+as\b|so-called|classifier|\bdetect|guardrail|mitigat|\bdefen[cs]e|\bdefend`)
	weakCue   = regexp.MustCompile(`(?i)\bwhat\s+(?:is|are|does|do)\b|\bexplain|\bwhy\s+(?:do|does|is|are|would)\b|\bhow\s+(?:do|does|can|should|would)\b|\bessay\b|\barticle\b|\bblog\b|\bpaper\b|\bphrase\b|\bsentence\b|\bmeaning\b|\bmeans\b|\bsecurity\b|\bLLMs?\b|\bchatbots?\b`)
)

// quoted reports whether the match sits between quotes or backticks.
func quoted(w Window) bool {
	const quotes = "\"'`“”‘’«»"
	before := w.Before()
	after := w.After()
	if len(before) > 4 {
		before = before[len(before)-4:]
	}
	if len(after) > 4 {
		after = after[:4]
	}
	return strings.ContainsAny(before, quotes) && strings.ContainsAny(after, quotes)
}

// discussed lowers level when the words around the phrase talk about it.
// The phrase itself is not searched: "what is your system prompt" is not a
// discussion of anything.
func discussed(level Level, w Window) Level {
	drop := Level(0)
	around := w.Before() + " \x00 " + w.After()
	switch {
	case strongCue.MatchString(around):
		drop = 2
	case weakCue.MatchString(around):
		drop = 1
	}
	if quoted(w) {
		drop++
	}
	if level-drop < Low {
		return Low
	}
	return level - drop
}

func withDiscussion(base Level) func(Window) Level {
	return func(w Window) Level { return discussed(base, w) }
}

// contextual returns high when the window matches cue, else low (both
// after the discussion adjustment).
func contextual(cue *regexp.Regexp, high, low Level) func(Window) Level {
	return func(w Window) Level {
		if cue.MatchString(w.Text) {
			return discussed(high, w)
		}
		return discussed(low, w)
	}
}

var (
	jailbreakContext = regexp.MustCompile(`(?i)\bDAN\b|jailbr|restrictions|no\s+rules|without\s+(?:any\s+)?(?:rules|limits|filters)|content\s+polic|broken\s+free|free\s+(?:of|from)\s+the|no\s+matter\s+what|whatever\s+happens|break(?:ing)?\s+character|refuse|tokens`)
	deviceContext    = regexp.MustCompile(`(?i)android|iphone|\bios\b|ipad|chrome|firefox|browser|extension|windows|macos|settings|phone|device|build\s+number|xcode|unity|wordpress|router|bios|visual\s+studio|vs\s?code|app\s+store|play\s+store`)
	aiContext        = regexp.MustCompile(`(?i)\byou\b|\byour\b|chatgpt|\bgpt|assistant|\bAI\b|\bmodel\b|respond|responses|answer|output|polic(?:y|ies)|openai|claude|gemini|llama`)
	extractionCue    = regexp.MustCompile(`(?i)verbatim|starting\s+with|begin(?:ning)?\s+with|word\s+for\s+word|"you\s+are|'you\s+are|including\s+(?:the\s+)?(?:system|instructions)`)
	afterBoundary    = regexp.MustCompile(`^\s{0,3}(?:$|[,.;:!)]|and\b|then\b|&)`)
)

// modeLevel decides "developer mode enabled" and the like: jailbreak when
// the words around it talk to the model, nothing much when they are about a
// phone or a browser.
func modeLevel(w Window) Level {
	m := strings.ToLower(w.Match())
	if strings.Contains(m, "developer") || strings.Contains(m, "dev mode") || strings.Contains(m, "debug") {
		switch {
		case deviceContext.MatchString(w.Text):
			return Low
		case aiContext.MatchString(w.Text):
			return discussed(High, w)
		}
		return discussed(Medium, w)
	}
	return discussed(High, w)
}

// embeddedInstruction finds injection phrasing in decoded base64.
var embeddedInstruction = regexp.MustCompile(`(?i)(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier|system|initial|original)|system\s+prompt|jailbr|developer\s+mode|you\s+are\s+now|do\s+anything\s+now|no\s+(?:restrictions|rules|filters)|reveal\s+(?:your|the)\s+(?:instructions|prompt)`)

// base64Level decodes a base64 run and looks for instructions in it.
func base64Level(w Window) Level {
	s := w.Match()
	s = strings.TrimRight(s, "=")
	s = s[:len(s)/4*4]
	var dec []byte
	var err error
	if strings.ContainsAny(s, "-_") {
		dec, err = base64.RawURLEncoding.DecodeString(s)
	} else {
		dec, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil || len(dec) < 12 {
		return None
	}
	printable := 0
	for _, c := range dec {
		if c >= 0x20 && c < 0x7f || c == '\n' || c == '\t' || c == '\r' {
			printable++
		}
	}
	if printable*10 < len(dec)*9 {
		return None
	}
	if embeddedInstruction.Match(dec) {
		return High
	}
	return None
}

func isBase64Byte(b byte) bool {
	return isAlnum(b) || b == '+' || b == '/' || b == '-' || b == '_' || b == '='
}

func promptRules(b *builder) {
	pi := func(id string, base Level, pattern string) {
		b.add(Rule{ID: "pi." + id, Filter: FilterPIAndJailbreak, Kind: KindPromptInjection, Context: promptContext, NotBefore: isWordByte, Confirm: withDiscussion(base)}, pattern)
	}
	jb := func(id string, base Level, pattern string) {
		b.add(Rule{ID: "jailbreak." + id, Filter: FilterPIAndJailbreak, Kind: KindJailbreak, Context: promptContext, NotBefore: isWordByte, Confirm: withDiscussion(base)}, pattern)
	}

	// Override the instructions that came before. "my previous
	// instructions" is a user correcting themselves and does not match.
	pi("override", High, `(?i)(?:ignore|disregard|forget|overrid(?:e|ing)|bypass|skip|abandon|neglect|discard|set{S}aside|pay{S}no{S}attention{S}to|do{S}not{S}(?:follow|obey)|don'?t{S}(?:follow|obey)|stop{S}following|no{S}longer{S}follow)(?:{S}(?:all|any|every|each|of|the|these|those|this|that|your|above|earlier|prior|previous)){0,3}{S}(?:`+adjectives+`(?:{S}{W}){0,2}?|(?:your|all)(?:{S}(?:`+adjectives+`|safety|core|base|own|current|given|existing))?){S}(?:instructions?|prompts?|directions?|directives?|rules|guidelines|guidance|programming|constraints|context|system{S}(?:prompt|message))`)
	pi("override-system-message", High, `(?i)(?:ignore|disregard|forget|overrid(?:e|ing))(?:{S}(?:the|your|all|any)){0,2}{S}(?:system|developer|hidden){S}(?:messages?|prompts?)`)
	// The same with letters spaced out or swapped for digits:
	// "i g n o r e  p r e v i o u s", "1gn0re prev1ous 1nstruct10ns".
	pi("override-obfuscated", High, `(?i)`+obfuscated("ignore")+`[\s._\-*\x{200B}-\x{200D}]{1,4}(?:(?:`+obfuscated("all")+`|`+obfuscated("the")+`)[\s._\-*\x{200B}-\x{200D}]{1,4}){0,2}(?:`+obfuscated("previous")+`|`+obfuscated("prior")+`|`+obfuscated("above")+`)[\s._\-*\x{200B}-\x{200D}]{1,4}`+obfuscated("instruction"))
	// "Forget everything above" with nothing after the phrase: an
	// instruction, where "disregard the above email" is not.
	b.add(Rule{ID: "pi.disregard-above", Filter: FilterPIAndJailbreak, Kind: KindPromptInjection, Context: promptContext, NotBefore: isWordByte, Confirm: func(w Window) Level {
		if !afterBoundary.MatchString(w.After()) {
			return None
		}
		return discussed(Medium, w)
	}}, `(?i)(?:ignore|disregard|forget)(?:{S}(?:all|everything|of|the)){0,3}{S}(?:above|before{S}this|you{S}(?:were|have{S}been|'ve{S}been){S}(?:told|given|instructed)(?:{S}(?:before|earlier|previously|so{S}far))?|in{S}your{S}(?:system{S})?prompt)`)

	// Asking for the system prompt.
	pi("reveal-system-prompt", High, `(?i)(?:reveal|show|print|display|output|repeat|leak|dump|expose|disclose|tell{S}me|give{S}me|write{S}out|recite|spell{S}out|paste|list|return|echo|share|provide|send{S}me)(?:{S}me)?{S}(?:your|all{S}(?:of{S})?your|its)(?:{S}{W}){0,2}?{S}(?:system{S}(?:prompt|message|instructions?)|initial{S}(?:prompt|instructions?)|hidden{S}(?:prompt|instructions?|rules)|original{S}(?:prompt|instructions?)|secret{S}(?:prompt|instructions?)|pre-?prompt|developer{S}(?:prompt|message|instructions?)|(?:full|complete|entire|exact){S}(?:prompt|instructions))`)
	pi("reveal-the-system-prompt", Medium, `(?i)(?:reveal|print|output|dump|leak|repeat|display|disclose)(?:{S}me)?{S}the{S}(?:system{S}prompt|initial{S}instructions|hidden{S}instructions|system{S}message|original{S}instructions)`)
	b.add(Rule{ID: "pi.repeat-above", Filter: FilterPIAndJailbreak, Kind: KindPromptInjection, Context: promptContext, NotBefore: isWordByte,
		Confirm: contextual(extractionCue, High, Low)},
		expand(`(?i)repeat{S}(?:the{S}|all{S}(?:of{S})?(?:the{S})?)?(?:words|text|everything|lines?|sentences?|instructions){S}(?:above|before{S}this)`))
	pi("ask-system-prompt", Medium, `(?i)(?:what|which){S}(?:is|are|were|was){S}your(?:{S}{W})?{S}(?:system{S}prompt|initial{S}instructions|original{S}instructions|hidden{S}instructions|secret{S}instructions|instructions{S}from{S}(?:openai|your{S}developers?))`)

	// New instructions and roles.
	pi("new-instructions", High, `(?i)your{S}(?:new|real|true|actual|updated){S}(?:instructions|task|goal|objective|purpose|role|directive|mission)s?{S}(?:is|are|will{S}be)`)
	pi("new-instructions-header", Medium, `(?i)(?:new|updated|revised|real|override){S}(?:system{S})?instructions?(?:{S})?:`)
	pi("chat-template-tokens", High, `(?i)<\|im_start\|>(?:{S})?(?:system|assistant)|<\|(?:system|endoftext|eot_id|start_header_id|begin_of_text)\|>|\[/?INST\](?:{S})?<<SYS>>|<<SYS>>`)
	pi("admin-override", High, `(?i)(?:system|admin(?:istrator)?|root|sudo|god){S}(?:override|mode)(?:{S})?(?::|(?:is{S})?(?:enabled|activated|on|engaged|granted|unlocked))`)
	pi("pwned", High, `(?i)(?:say|print|output|write|respond{S}with|reply{S}with){S}["'\x60“]?I{S}have{S}been{S}(?:PWNED|pwned|hacked)`)
	pi("decode-and-follow", High, `(?i)(?:decode|base64|b64|rot13|hex)[^\n]{0,40}?(?:and|then){S}(?:follow|obey|comply{S}with|act{S}on|execute|carry{S}out|do)(?:{S}(?:the|its|those|these|any|all))?{S}(?:instructions?|commands?|directions?|orders?|what{S}it{S}says)`)
	b.add(Rule{ID: "pi.base64-instruction", Filter: FilterPIAndJailbreak, Kind: KindPromptInjection, Context: 1, NotBefore: isBase64Byte, Confirm: base64Level},
		`[A-Za-z0-9+/\-_]{24,512}={0,2}`)

	// Jailbreaks: personas without rules.
	b.add(Rule{ID: "jailbreak.named-persona", Filter: FilterPIAndJailbreak, Kind: KindJailbreak, Context: promptContext, NotBefore: isWordByte, NotAfter: isWordByte, Confirm: withDiscussion(High)},
		expand(`(?i)(?:you{S}are|you'?re|act{S}as|acting{S}as|pretend{S}(?:to{S}be|you{S}are)|become|roleplay{S}as|role-?play{S}as|role{S}of(?:{S}{W}){0,5}?{S}(?:known{S}as|called|named)|play{S}the{S}role{S}of|respond{S}as|answer{S}as)(?:{S}(?:now|going{S}to{S}be|a|an|the|my|called|named)){0,3}{S}(?-i:DAN|STAN|DUDE|AIM|KEVIN|UCAR|APOPHIS|BetterDAN|AntiGPT|DevMode|NRAF|Mongo{S}Tom)`))
	jb("evil-persona", High, `(?i)(?:you{S}are|you'?re|act{S}as|acting{S}as|pretend{S}(?:to{S}be|you{S}are)|become|roleplay{S}as|role-?play{S}as|play{S}the{S}role{S}of|respond{S}as|answer{S}as)(?:{S}(?:now|going{S}to{S}be|a|an|the|my|completely|totally)){0,3}{S}(?:evil|unfiltered|uncensored|unrestricted|amoral|unethical|jailbroken|rogue|lawless|unaligned)(?:{S}(?:and|,)?(?:{S})?(?:evil|unfiltered|uncensored|unrestricted|amoral|unethical)){0,2}{S}(?:AI|assistant|chatbot|model|version|GPT|twin|confidant|bot|llm|language{S}model)`)
	b.add(Rule{ID: "jailbreak.do-anything-now", Filter: FilterPIAndJailbreak, Kind: KindJailbreak, Context: promptContext, NotBefore: isWordByte,
		Confirm: contextual(jailbreakContext, High, Low)}, expand(`(?i)do{S}anything{S}now`))
	b.add(Rule{ID: "jailbreak.mode-enabled", Filter: FilterPIAndJailbreak, Kind: KindJailbreak, Context: promptContext, NotBefore: isWordByte, Confirm: modeLevel},
		expand(`(?i)(?:developer|dev|god|sudo|unrestricted|unfiltered|uncensored|jailbreak|jailbroken|evil|chaos|opposite|DAN|anarchy)[\s_-]?mode{S}(?:is{S}(?:now{S})?)?(?:enabled|activated|on|engaged|unlocked)`))
	b.add(Rule{ID: "jailbreak.enable-mode", Filter: FilterPIAndJailbreak, Kind: KindJailbreak, Context: promptContext, NotBefore: isWordByte, Confirm: modeLevel},
		expand(`(?i)(?:enable|activate|enter|switch{S}(?:in)?to|turn{S}on|unlock|go{S}into|with)(?:{S}(?:the|your))?{S}(?:developer|god|jailbreak|unrestricted|unfiltered|uncensored|DAN|evil|chaos|anarchy|opposite)[\s_-]?mode`))
	jb("no-restrictions-persona", High, `(?i)(?:you{S}are|you'?re|you{S}were|you{S}will{S}be|you{S}have{S}become|act{S}as|acting{S}as|pretend{S}(?:to{S}be|you{S}are|that{S}you{S}are)|behave{S}(?:like|as)|roleplay{S}as|role-?play{S}as|become|imagine{S}(?:you{S}are|yourself{S}as)|respond{S}as|answer{S}as|from{S}now{S}on{S}you)(?:{S}{W}){0,6}?{S}(?:without|with{S}no|free{S}(?:of|from)|(?:not|no{S}longer|never){S}(?:bound|restricted|limited|constrained){S}by|unbound{S}by|(?:that|who|you){S}(?:ignores?|has{S}no|have{S}no)|(?:that|who){S}(?:does|do){S}not{S}(?:follow|have))(?:{S}(?:any|all|the|your|its|their|ethical|moral|safety|content|usual|normal|typical|standard|openai'?s?|ai|programmed|built-?in|previous|former|original)){0,3}{S}(?:restrictions?|rules|limits|limitations|filters?|guidelines|censorship|ethics|morals|morality|polic(?:y|ies)|boundaries|constraints|programming|safeguards|guardrails|principles)`)
	jb("from-now-on", High, `(?i)from{S}now{S}on,?{S}you(?:{S}{W}){0,8}?{S}(?:without{S}(?:any{S})?(?:restrictions|filters|limits|censorship|warnings)|regardless{S}of{S}(?:ethics|legality|morality|the{S}rules|any{S}rules|your{S}guidelines)|no{S}matter{S}how{S}(?:illegal|unethical|harmful|dangerous|immoral)|never{S}refuse|even{S}if{S}(?:it'?s|it{S}is){S}(?:illegal|unethical|harmful|dangerous))`)
	jb("cannot-refuse", Medium, `(?i)(?:you{S}(?:can(?:not|'?t)|must{S}not|must{S}never|will{S}never|are{S}not{S}allowed{S}to|may{S}not)|never{S}ever){S}(?:refuse|decline|reject){S}(?:a{S}|any{S}|my{S}|to{S})?(?:request|question|prompt|answer|respond|anything)`)
	jb("token-threat", High, `(?i)(?:lose|deduct(?:ed)?|minus|remove){S}\d{1,3}{S}tokens|tokens?{S}(?:will{S}be{S})?deducted|you{S}have{S}\d{1,3}{S}tokens`)
	jb("two-responses", High, `(?i)(?:two|2){S}(?:different{S}|separate{S})?(?:responses|answers|outputs|paragraphs)(?:{S}{W}){0,8}?{S}(?:normal|classic|standard|filtered)(?:{S}{W}){0,6}?{S}(?:jailbroken|jailbreak|unfiltered|developer{S}mode|DAN|uncensored|evil)`)
	b.add(Rule{ID: "jailbreak.hypothetical", Filter: FilterPIAndJailbreak, Kind: KindJailbreak, Context: promptContext, NotBefore: isWordByte,
		Confirm: contextual(aiContext, Medium, Low)},
		expand(`(?i)(?:hypothetical(?:ly)?|in{S}a{S}(?:fictional|hypothetical){S}(?:world|scenario|universe)|for{S}(?:a{S}story|a{S}novel|a{S}movie|fiction))(?:{S}{W}){0,10}?{S}(?:no|without|free{S}(?:of|from)){S}(?:any{S})?(?:restrictions|filters|guidelines|ethics|censorship|content{S}polic(?:y|ies))`))
	jb("jailbroken", High, `(?i)(?:you{S}(?:are|have{S}been)|you'?ve{S}been|you'?re|i{S}have|i'?ve|we{S}have|successfully)(?:{S}(?:now|been|successfully|fully)){0,2}{S}jailbr(?:oken|eaked)`)
	b.add(Rule{ID: "jailbreak.stay-in-character", Filter: FilterPIAndJailbreak, Kind: KindJailbreak, Context: promptContext, NotBefore: isWordByte,
		Confirm: contextual(jailbreakContext, Medium, Low)}, expand(`(?i)(?:stay|remain|keep){S}in{S}character`))
	b.add(Rule{ID: "jailbreak.now-in-mode", Filter: FilterPIAndJailbreak, Kind: KindJailbreak, Context: promptContext, NotBefore: isWordByte, Confirm: modeLevel},
		expand(`(?i)(?:you{S}are|you're|we{S}are|now){S}(?:now{S})?in(?:to)?{S}(?:god|jailbreak|unrestricted|unfiltered|uncensored|DAN|evil|chaos|anarchy|opposite|developer)[\s_-]?mode`))
	jb("guidelines-lifted", High, `(?i)your{S}(?:guidelines|rules|restrictions|policies|filters|programming|safety{S}guidelines|content{S}polic(?:y|ies)){S}(?:no{S}longer{S}apply|(?:are|have{S}been){S}(?:lifted|removed|disabled|suspended|revoked|turned{S}off))`)
	jb("grandma-exploit", High, `(?i)(?:act|pretend|roleplay|role-play|play)(?:{S}{W}){0,5}?{S}(?:deceased|dead|late){S}(?:grandmother|grandma|granny|grandfather|grandpa)`)
	jb("break-the-rules", Medium, `(?i)(?:let'?s|now{S}(?:we|you){S}(?:can|will)){S}break{S}(?:the|all{S}the|your){S}rules`)
	jb("disable-safety", High, `(?i)(?:(?:ignore|disregard|forget|overrid(?:e|ing)|abandon|drop)(?:{S}(?:all|any|of|the|your|its|these|those)){0,3}|(?:bypass|circumvent|evade|get{S}around|turn{S}off|disable|remove|deactivate|switch{S}off|suspend)(?:{S}(?:all{S}(?:of{S})?)?your))(?:{S}(?:safety|content|ethical|ethics|moral|security|alignment|openai'?s?|anthropic'?s?|google'?s?)){1,2}(?:{S}{W})?{S}(?:guidelines|filters?|restrictions|policies|policy|rules|protocols|measures|guardrails|training|constraints|safeguards|principles|programming|settings)`)
}

// obfuscated matches word with its letters optionally separated by one
// space, dot, dash or underscore, and with the usual digit and symbol
// look-alikes: obfuscated("ignore") matches "1 g n 0 r e".
func obfuscated(word string) string {
	leet := map[rune]string{'a': "[a4@]", 'e': "[e3]", 'i': "[i1!|]", 'o': "[o0]", 's': "[s5$]", 't': "[t7]", 'g': "[g9]", 'l': "[l1|]"}
	var b strings.Builder
	for i, c := range word {
		if i > 0 {
			b.WriteString(`[\s._-]?`)
		}
		if class, ok := leet[c]; ok {
			b.WriteString(class)
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}
