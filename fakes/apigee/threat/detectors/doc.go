// Package detectors holds the local stand-ins for Google Model Armor's
// filters: prompt injection and jailbreak phrasing, malicious URIs, sensitive
// data (payment cards, IBANs, US social security numbers, API keys, private
// keys, e-mail addresses) and a small responsible-AI lexicon.
//
// Each detector is a Rule: a bounded regular expression that finds
// candidates and Go code that confirms them (a Luhn check, an IBAN mod-97
// check, a look at the words around a phrase). Rules are local, deciding from
// a candidate and a bounded window around it, so the threat package can scan
// a streamed answer chunk by chunk and get what scanning it whole would give.
//
// These are heuristics, written to be predictable and testable, not a
// reproduction of Model Armor's classifiers. The URI deny list holds test
// entries (Google's Safe Browsing test pages, reserved .example names), not
// threat intelligence.
package detectors
