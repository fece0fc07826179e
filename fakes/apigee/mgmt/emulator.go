package mgmt

import (
	"net/http"
	"time"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// advanceClock is gatecheck's POST /v1/emulator/clock:advance: it parses
// {"duration":"61s"} and calls Options.OnClockAdvance.
func (a *API) advanceClock(r *http.Request) (int, any, error) {
	if a.onClockAdvance == nil {
		return 0, nil, &apiError{http.StatusNotImplemented, "UNIMPLEMENTED",
			"this emulator's clock cannot be advanced (it runs on real time)"}
	}
	var in apigeeapi.ClockAdvance
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Now != "" {
		return 0, nil, invalid("now: output only")
	}
	d, err := time.ParseDuration(in.Duration)
	if err != nil {
		return 0, nil, invalid("duration: %q is not a duration like \"61s\" or \"1h30m\"", in.Duration)
	}
	if d < 0 {
		return 0, nil, invalid("duration: %v is negative; the clock only moves forward", d)
	}
	if err := a.onClockAdvance(d); err != nil {
		return 0, nil, &apiError{http.StatusBadRequest, "FAILED_PRECONDITION", "advance the clock: " + err.Error()}
	}
	return http.StatusOK, apigeeapi.ClockAdvance{Duration: d.String(), Now: a.now()}, nil
}
