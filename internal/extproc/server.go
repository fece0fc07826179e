package extproc

import (
	"context"
	"errors"
	"io"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Processor handles the messages of one ext_proc stream, that is of one HTTP
// request. Process is called once per message, in the order received, and
// returns the answers to send now: usually exactly one, none when the
// processor holds its answer back (full-duplex buffering), several when it
// releases held answers. An error ends the stream with that error; a processor
// that wants the client to see an HTTP error answers with ImmediateResponse
// instead.
type Processor interface {
	Process(ctx context.Context, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error)
}

// Stream is the server side of one ext_proc stream.
type Stream = extprocv3.ExternalProcessor_ProcessServer

// Serve runs the receive loop for one stream: receive, process, send, until the
// client closes its side (io.EOF) or the context is cancelled, both of which
// end quietly with nil.
func Serve(stream Stream, p Processor) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil || status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		}
		resps, err := p.Process(ctx, req)
		if err != nil {
			return err
		}
		for _, r := range resps {
			if err := stream.Send(r); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}
