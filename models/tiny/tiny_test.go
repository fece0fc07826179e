package tiny

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decode reads GGUF bytes back with the ollama module's own decoder.
func decode(t *testing.T, b []byte) *ggml.GGML {
	t.Helper()
	g, err := ggml.Decode(bytes.NewReader(b), -1)
	require.NoError(t, err)
	return g
}

// TestWrittenModelDecodes writes the model, decodes it with fs/ggml.Decode
// and checks what llama.cpp and Ollama read: the architecture and its
// hyperparameters, every tensor with its shape and type, and the vocabulary.
func TestWrittenModelDecodes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	require.NoError(t, WriteFile(path, DefaultSeed))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	t.Logf("tiny model: %d bytes", len(b))
	assert.Greater(t, len(b), 100<<10, "a few hundred KB")
	assert.Less(t, len(b), 1<<20, "a few hundred KB")

	g := decode(t, b)
	kv := g.KV()
	assert.Equal(t, "llama", kv.Architecture())
	assert.Equal(t, Name, kv.String("general.name"))
	assert.Equal(t, uint64(BlockCount), kv.BlockCount())
	assert.Equal(t, uint64(EmbeddingLength), kv.EmbeddingLength())
	assert.Equal(t, uint64(ContextLength), kv.ContextLength())
	assert.Equal(t, uint32(FeedForwardLength), kv.Uint("feed_forward_length"))
	assert.Equal(t, uint64(HeadCount), kv.HeadCountMax())
	assert.Equal(t, uint64(HeadCountKV), kv.HeadCountKVMax())
	assert.Equal(t, uint32(HeadDim), kv.Uint("rope.dimension_count"))
	assert.InDelta(t, 1e-5, kv.Float("attention.layer_norm_rms_epsilon"), 1e-9)
	assert.Equal(t, ChatTemplate, kv.ChatTemplate())

	// Vocabulary: the tokenizer.ggml.* keys as llama.cpp reads them.
	assert.Equal(t, "llama", kv.String("tokenizer.ggml.model"))
	tokens := kv.Strings("tokenizer.ggml.tokens")
	scores := kv.Floats("tokenizer.ggml.scores")
	types := kv.Ints("tokenizer.ggml.token_type")
	n := len(tokens)
	assert.Equal(t, uint32(n), kv.Uint("vocab_size"))
	assert.Len(t, scores, n)
	assert.Len(t, types, n)
	assert.Greater(t, n, 3+256+300, "special and byte tokens, and a few hundred pieces")
	assert.Less(t, n, 3+256+1000)
	assert.Equal(t, []string{"<unk>", "<s>", "</s>"}, tokens[:3])
	assert.Equal(t, []int32{TokenUnknown, TokenControl, TokenControl}, types[:3])
	assert.Equal(t, uint32(UnknownID), kv.Uint("tokenizer.ggml.unknown_token_id"))
	assert.Equal(t, uint32(BOSID), kv.Uint("tokenizer.ggml.bos_token_id"))
	assert.Equal(t, uint32(EOSID), kv.Uint("tokenizer.ggml.eos_token_id"))
	assert.True(t, kv.Bool("tokenizer.ggml.add_bos_token"))
	index := map[string]int{}
	for i, tok := range tokens {
		_, dup := index[tok]
		require.False(t, dup, "token %q appears twice", tok)
		index[tok] = i
	}
	for b := range 256 {
		tok := fmt.Sprintf("<0x%02X>", b)
		i, ok := index[tok]
		if assert.True(t, ok, "byte fallback token %s", tok) {
			assert.Equal(t, TokenByte, types[i], tok)
		}
	}
	for _, tok := range []string{Space, "a", "Z", "7", "?", Space + "the", Space + "gateway", Space + "tokens"} {
		if i, ok := index[tok]; assert.True(t, ok, "piece %q", tok) {
			assert.Equal(t, TokenNormal, types[i], tok)
			assert.Negative(t, scores[i], tok)
		}
	}
	// SentencePiece builds a word by merging from its first characters, so
	// every prefix of a word piece must be a piece too.
	for tok, i := range index {
		if types[i] != TokenNormal || !strings.HasPrefix(tok, Space) {
			continue
		}
		r := []rune(tok)
		for k := 1; k < len(r); k++ {
			_, ok := index[string(r[:k])]
			assert.True(t, ok, "prefix %q of %q", string(r[:k]), tok)
		}
	}

	// Tensors.
	want := map[string][]uint64{
		"token_embd.weight":  {EmbeddingLength, uint64(n)},
		"output_norm.weight": {EmbeddingLength},
		"output.weight":      {EmbeddingLength, uint64(n)},
	}
	for i := range BlockCount {
		blk := "blk." + strconv.Itoa(i) + "."
		want[blk+"attn_norm.weight"] = []uint64{EmbeddingLength}
		want[blk+"attn_q.weight"] = []uint64{EmbeddingLength, HeadCount * HeadDim}
		want[blk+"attn_k.weight"] = []uint64{EmbeddingLength, HeadCountKV * HeadDim}
		want[blk+"attn_v.weight"] = []uint64{EmbeddingLength, HeadCountKV * HeadDim}
		want[blk+"attn_output.weight"] = []uint64{HeadCount * HeadDim, EmbeddingLength}
		want[blk+"ffn_norm.weight"] = []uint64{EmbeddingLength}
		want[blk+"ffn_gate.weight"] = []uint64{EmbeddingLength, FeedForwardLength}
		want[blk+"ffn_up.weight"] = []uint64{EmbeddingLength, FeedForwardLength}
		want[blk+"ffn_down.weight"] = []uint64{FeedForwardLength, EmbeddingLength}
	}
	got := map[string][]uint64{}
	var end uint64
	for _, tt := range g.Tensors().Items() {
		got[tt.Name] = tt.Shape
		wantType := "F16"
		if len(tt.Shape) == 1 {
			wantType = "F32"
		}
		assert.Equal(t, wantType, tt.Type(), tt.Name)
		end = max(end, g.Tensors().Offset+tt.Offset+tt.Size())
	}
	assert.Equal(t, want, got)
	assert.Equal(t, uint64(len(b)), end, "the file ends with the last tensor's data")
	assert.Equal(t, uint32(1), kv.Uint("general.file_type"), "mostly F16")
}

// TestSeedMakesTheBytes: the same seed writes the same bytes, another seed
// other weights (and the same metadata).
func TestSeedMakesTheBytes(t *testing.T) {
	t.Parallel()
	a1, err := Encode(1)
	require.NoError(t, err)
	a2, err := Encode(1)
	require.NoError(t, err)
	b, err := Encode(2)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(a1, a2), "the same seed writes the same bytes")
	assert.False(t, bytes.Equal(a1, b), "another seed writes other bytes")
	require.Len(t, b, len(a1), "the seed changes values, not the layout")
	ga, gb := decode(t, a1), decode(t, b)
	assert.Equal(t, ga.KV(), gb.KV())
	assert.Equal(t, a1[:ga.Tensors().Offset], b[:gb.Tensors().Offset], "header and metadata do not depend on the seed")
}

// TestWeightsAreSane reads the F16 weights back: noise of the intended
// spread, norms all ones, and no token other than words and </s> favoured
// by the output layer.
func TestWeightsAreSane(t *testing.T) {
	t.Parallel()
	v := Vocabulary()
	for _, tt := range Tensors(DefaultSeed) {
		var buf bytes.Buffer
		_, err := tt.WriteTo(&buf)
		require.NoError(t, err)
		require.Equal(t, tt.Size(), uint64(buf.Len()), tt.Name)
		if len(tt.Shape) == 1 {
			for i := 0; i < buf.Len(); i += 4 {
				require.Equal(t, float32(1), math.Float32frombits(uint32(buf.Bytes()[i])|uint32(buf.Bytes()[i+1])<<8|uint32(buf.Bytes()[i+2])<<16|uint32(buf.Bytes()[i+3])<<24), tt.Name)
			}
			continue
		}
		cols := int(tt.Shape[0])
		var sum, sq float64
		var n int
		for i := 0; i < buf.Len(); i += 2 {
			x := fromFloat16(uint16(buf.Bytes()[i]) | uint16(buf.Bytes()[i+1])<<8)
			require.False(t, math.IsNaN(x) || math.IsInf(x, 0), tt.Name)
			row := (i / 2) / cols
			if tt.Name == "output.weight" && v.Types[row] != TokenNormal && row != EOSID {
				require.Zero(t, x, "output row of %q", v.Tokens[row])
				continue
			}
			sum, sq, n = sum+x, sq+x*x, n+1
		}
		mean := sum / float64(n)
		std := math.Sqrt(sq/float64(n) - mean*mean)
		want := 0.02
		if tt.Name == "output.weight" {
			want = 0.375
		}
		assert.InDelta(t, want, std, want*0.1, "%s spread", tt.Name)
		assert.InDelta(t, 0, mean, want*0.1, "%s mean", tt.Name)
	}
}

func fromFloat16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, mant := int(h>>10)&0x1f, float64(h&0x3ff)
	switch exp {
	case 0:
		return sign * mant * math.Pow(2, -24)
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * (1 + mant/1024) * math.Pow(2, float64(exp-15))
}

func TestFloat16(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                 // largest finite
		{65520, 0x7c00},                 // rounds up to infinity
		{1e6, 0x7c00},                   // overflow
		{6.1035156e-05, 0x0400},         // smallest normal
		{5.9604645e-08, 0x0001},         // smallest subnormal
		{2.9802322e-08, 0x0000},         // half of it: ties to even, zero
		{1 + 1.0/2048, 0x3c00},          // tie: to even
		{1 + 3.0/2048, 0x3c02},          // tie: to even, upwards
		{float32(math.Inf(-1)), 0xfc00}, // infinity
	} {
		assert.Equal(t, tc.want, float16(tc.in), "float16(%g)", tc.in)
	}
	assert.Equal(t, uint16(0x7e00), float16(float32(math.NaN()))&0x7e00)
	// Round trip of ordinary values stays within half a unit in the last place.
	for _, x := range []float64{0.02, -0.375, 0.0001234, 3.14159} {
		got := fromFloat16(float16(float32(x)))
		assert.InEpsilon(t, x, got, 1.0/1024, "%g", x)
	}
}
