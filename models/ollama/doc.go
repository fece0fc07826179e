// Package ollama gets gatecheck's models onto real Ollama servers, through
// Ollama's own client (github.com/ollama/ollama/api): it reads Ollama hosts
// the way the ollama CLI reads OLLAMA_HOST, checks whether a server has a
// model (Show), creates the tiny model of package tiny from an uploaded blob
// (CreateBlob, Create) so a server with no internet still serves a real
// model, and pulls named models (Pull) with a text progress bar.
//
// A pull that fails — at once when the server is offline, since the
// registry does not answer — is a [PullError] whose message suggests
// `gatecheck model tiny --create NAME` instead. See issue 7 and DESIGN.md §6.
package ollama
