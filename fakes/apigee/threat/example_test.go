package threat_test

import (
	"fmt"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
)

// A streamed OpenAI answer is redacted chunk by chunk; the card number is
// split across two chunks.
func ExampleResponseRedactor() {
	d, err := threat.NewDetectors(threat.DetectorConfig{Filters: []string{threat.FilterSDP}})
	if err != nil {
		panic(err)
	}
	r, err := threat.NewResponseRedactor(d, "text/event-stream")
	if err != nil {
		panic(err)
	}
	body := []string{
		`data: {"choices":[{"index":0,"delta":{"content":"Your card 4111 1111 "},"finish_reason":null}]}` + "\n\n",
		`data: {"choices":[{"index":0,"delta":{"content":"1111 1111 is on file."},"finish_reason":null}]}` + "\n\n",
		`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n",
	}
	var out strings.Builder
	for _, chunk := range body {
		o, _, err := r.Write([]byte(chunk))
		if err != nil {
			panic(err)
		}
		out.Write(o)
	}
	o, _, _ := r.Close()
	out.Write(o)
	fmt.Print(out.String())
	// Output:
	// data: {"choices":[{"delta":{"content":""},"finish_reason":null,"index":0}]}
	//
	// data: {"choices":[{"delta":{"content":""},"finish_reason":null,"index":0}]}
	//
	// data: {"choices":[{"delta":{"content":"Your card [REDACTED_CREDIT_CARD] is on file."},"finish_reason":"stop","index":0}]}
	//
	// data: [DONE]
}

func ExampleJSONLimits_Check() {
	lim := threat.JSONLimits{ContainerDepth: 3}
	v := lim.Check(strings.NewReader(`{"a":[{"b":[1]}]}`))
	fmt.Println(v.ErrorCode())
	fmt.Println(v.FaultString("JTP"))
	// Output:
	// steps.jsonthreatprotection.ExecutionFailed
	// JSONThreatProtection[JTP]: Execution failed. reason: JSONThreatProtection[JTP]: Exceeded container depth at line 1
}

func ExampleTranslateJavaRegex() {
	_, err := threat.TranslateJavaRegex(`(?<=user=)admin`)
	fmt.Println(err)
	re, _ := threat.TranslateJavaRegex(`\p{Alpha}+\s*=\s*'`)
	fmt.Println(re.MatchString("name = 'x"))
	// Output:
	// java regex "(?<=user=)admin": at offset 0: lookbehind "(?<=" is not supported by RE2 (Go regexp has no lookaround); rewrite the pattern without it
	// true
}
