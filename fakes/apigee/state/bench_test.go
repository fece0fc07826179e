package state

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

func benchStores(b *testing.B) map[string]Store {
	f, err := OpenFile(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return map[string]Store{"Memory": NewMemory(), "File": f}
}

// BenchmarkTake measures one quota check-and-count, from parallel callers
// on distinct and on one shared counter.
func BenchmarkTake(b *testing.B) {
	for name, s := range benchStores(b) {
		for _, shared := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/shared=%v", name, shared), func(b *testing.B) {
				ctx := context.Background()
				var n atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					key := fmt.Sprintf("k%d", n.Add(1))
					if shared {
						key = "shared"
					}
					for pb.Next() {
						if _, err := s.Take(ctx, TakeRequest{Key: key, Bucket: 1, Window: 60, Weight: 1,
							Limit: 1 << 40, Enforce: true, Count: true}); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

// BenchmarkConsumer measures the per-request key lookup.
func BenchmarkConsumer(b *testing.B) {
	ctx := context.Background()
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			if err := s.PutDeveloper(ctx, developer("ana@example.com")); err != nil {
				b.Fatal(err)
			}
			for _, p := range []string{"gold", "silver"} {
				if err := s.PutProduct(ctx, product(p)); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.PutApp(ctx, "ana@example.com", app("chat", "key-00000000001", "gold", "silver")); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Consumer(ctx, "key-00000000001"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
