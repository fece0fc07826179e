package detectors

// Kinds of the rai (responsible AI) filter. Model Armor's RAI filter is a
// set of classifiers; this stand-in only knows a few unmistakable phrasings.
const (
	KindDangerous  = "dangerous"
	KindHarassment = "harassment"
)

func raiRules(b *builder) {
	b.add(Rule{ID: "rai.weapons", Filter: FilterRAI, Kind: KindDangerous, Context: promptContext, NotBefore: isWordByte, NotAfter: isWordByte, Confirm: withDiscussion(High)},
		`(?i)(?:how{S}(?:do{S}(?:i|you|we)|to|can{S}(?:i|you|we)|would{S}(?:i|you|one))|steps{S}to|instructions{S}(?:for|to|on{S}how{S}to)|guide{S}to|recipe{S}for|teach{S}me{S}(?:how{S})?to)(?:{S}{W}){0,3}?{S}(?:make|build|synthesi[sz]e|cook|manufacture|produce|assemble|create|brew)(?:{S}(?:a|an|some|the|homemade|my{S}own|our{S}own)){0,2}{S}(?:pipe{S}bombs?|bombs?|explosives?|nerve{S}agents?|sarin|vx{S}gas|ricin|anthrax|meth(?:amphetamine)?|napalm|chemical{S}weapons?|bioweapons?|biological{S}weapons?|dirty{S}bombs?|molotov(?:{S}cocktails?)?|ghost{S}guns?)`)
	b.add(Rule{ID: "rai.self-harm-incitement", Filter: FilterRAI, Kind: KindHarassment, Context: promptContext, NotBefore: isWordByte, NotAfter: isWordByte, Confirm: withDiscussion(High)},
		`(?i)(?:go{S})?(?:kill|hang|shoot){S}yourself|kys`)
}
