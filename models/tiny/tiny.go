package tiny

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/ollama/ollama/fs/ggml"
)

// The model's shape. Small enough to write in milliseconds and load in a
// blink; large enough to be a real transformer (two blocks, grouped-query
// attention, SwiGLU).
const (
	// BlockCount is the number of transformer blocks (llama.block_count).
	BlockCount = 2
	// EmbeddingLength is the width of the residual stream (llama.embedding_length).
	EmbeddingLength = 64
	// FeedForwardLength is the width of the feed-forward (llama.feed_forward_length).
	FeedForwardLength = 128
	// HeadCount is the number of query heads (llama.attention.head_count).
	HeadCount = 4
	// HeadCountKV is the number of key/value heads (llama.attention.head_count_kv).
	HeadCountKV = 2
	// HeadDim is the width of one head; rotary embeddings cover all of it
	// (llama.rope.dimension_count).
	HeadDim = EmbeddingLength / HeadCount
	// ContextLength is the trained context (llama.context_length).
	ContextLength = 2048
)

// Name is the model name the file carries (general.name) and the name
// gatecheck gives the model it creates in Ollama.
const Name = "gatecheck-tiny"

// DefaultSeed is the seed `gatecheck model tiny` uses when none is given.
const DefaultSeed int64 = 1

// Token types of the tokenizer.ggml.token_type array, as llama.cpp numbers
// them (llama_token_type).
const (
	TokenNormal  int32 = 1
	TokenUnknown int32 = 2
	TokenControl int32 = 3
	TokenByte    int32 = 6
)

// The special tokens' ids.
const (
	UnknownID = 0 // <unk>
	BOSID     = 1 // <s>
	EOSID     = 2 // </s>
)

// ChatTemplate is the Jinja chat template stored in tokenizer.chat_template:
// Zephyr's, word for word as Ollama's template index lists it, so that
// `ollama create` detects it and gives the model Ollama's zephyr template and
// stop words.
const ChatTemplate = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"

// Metadata is the model's GGUF key-values: the llama hyperparameters, the
// vocabulary and the chat template. It does not depend on the seed.
func Metadata() ggml.KV {
	v := Vocabulary()
	return ggml.KV{
		"general.architecture": "llama",
		"general.name":         Name,
		"general.description":  "gatecheck's tiny random-weight llama model: real tokens, gibberish answers",
		"general.file_type":    uint32(1), // mostly F16

		"llama.block_count":                      uint32(BlockCount),
		"llama.context_length":                   uint32(ContextLength),
		"llama.embedding_length":                 uint32(EmbeddingLength),
		"llama.feed_forward_length":              uint32(FeedForwardLength),
		"llama.attention.head_count":             uint32(HeadCount),
		"llama.attention.head_count_kv":          uint32(HeadCountKV),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count":             uint32(HeadDim),
		"llama.rope.freq_base":                   float32(10000),
		"llama.vocab_size":                       uint32(len(v.Tokens)),

		"tokenizer.ggml.model":            "llama",
		"tokenizer.ggml.tokens":           v.Tokens,
		"tokenizer.ggml.scores":           v.Scores,
		"tokenizer.ggml.token_type":       v.Types,
		"tokenizer.ggml.bos_token_id":     uint32(BOSID),
		"tokenizer.ggml.eos_token_id":     uint32(EOSID),
		"tokenizer.ggml.unknown_token_id": uint32(UnknownID),
		"tokenizer.ggml.add_bos_token":    true,
		"tokenizer.ggml.add_eos_token":    false,
		"tokenizer.chat_template":         ChatTemplate,
	}
}

// Tensors are the model's weights for seed, in no particular order (the
// writer sorts them). Each tensor's values come from its own generator,
// seeded by seed and the tensor's name, so they do not depend on the order
// they are made or written in.
func Tensors(seed int64) []*ggml.Tensor {
	v := Vocabulary()
	n := uint64(len(v.Tokens))
	const e, f, q, kv = EmbeddingLength, FeedForwardLength, HeadCount * HeadDim, HeadCountKV * HeadDim
	// Shapes are GGUF's: the first dimension is the row (the input side of
	// a matrix), as llama.cpp lists them.
	ts := []*ggml.Tensor{
		f16Tensor(seed, "token_embd.weight", []uint64{e, n}, 0.02, nil),
		f32Ones("output_norm.weight", e),
		// The output rows of byte and control tokens stay zero, word pieces
		// get logits of a few units: the gibberish is mostly words.
		f16Tensor(seed, "output.weight", []uint64{e, n}, 0.375, func(row int) float64 {
			if v.Types[row] == TokenNormal || row == EOSID {
				return 1
			}
			return 0
		}),
	}
	for i := range BlockCount {
		blk := "blk." + strconv.Itoa(i) + "."
		ts = append(ts,
			f32Ones(blk+"attn_norm.weight", e),
			f16Tensor(seed, blk+"attn_q.weight", []uint64{e, q}, 0.02, nil),
			f16Tensor(seed, blk+"attn_k.weight", []uint64{e, kv}, 0.02, nil),
			f16Tensor(seed, blk+"attn_v.weight", []uint64{e, kv}, 0.02, nil),
			f16Tensor(seed, blk+"attn_output.weight", []uint64{q, e}, 0.02, nil),
			f32Ones(blk+"ffn_norm.weight", e),
			f16Tensor(seed, blk+"ffn_gate.weight", []uint64{e, f}, 0.02, nil),
			f16Tensor(seed, blk+"ffn_up.weight", []uint64{e, f}, 0.02, nil),
			f16Tensor(seed, blk+"ffn_down.weight", []uint64{f, e}, 0.02, nil),
		)
	}
	return ts
}

// f16Tensor is a matrix of gaussian noise with standard deviation std, each
// row (second dimension) scaled by scale(row) when scale is not nil.
func f16Tensor(seed int64, name string, shape []uint64, std float64, scale func(row int) float64) *ggml.Tensor {
	h := fnv.New64a()
	_, _ = io.WriteString(h, name)
	rng := rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
	cols, rows := int(shape[0]), int(shape[1])
	data := make([]byte, 2*cols*rows)
	for r := range rows {
		s := std
		if scale != nil {
			s *= scale(r)
		}
		for c := range cols {
			x := rng.NormFloat64() * s // drawn even when scaled to zero, so rows stay aligned
			binary.LittleEndian.PutUint16(data[2*(r*cols+c):], float16(float32(x)))
		}
	}
	return &ggml.Tensor{Name: name, Kind: uint32(ggml.TensorTypeF16), Shape: shape, WriterTo: bytes.NewReader(data)}
}

// f32Ones is a norm's weight vector: all ones, as a freshly initialised
// RMSNorm has.
func f32Ones(name string, n int) *ggml.Tensor {
	data := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(1))
	}
	return &ggml.Tensor{Name: name, Kind: uint32(ggml.TensorTypeF32), Shape: []uint64{uint64(n)}, WriterTo: bytes.NewReader(data)}
}

// float16 converts f to IEEE 754 binary16 bits, rounding to nearest even,
// with subnormals, infinities and NaN.
func float16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp32 := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp32 == 0xff { // infinity or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	exp := exp32 - 127 + 15
	switch {
	case exp >= 0x1f:
		return sign | 0x7c00 // too large: infinity
	case exp <= 0: // a binary16 subnormal (or zero)
		s := uint(14 - exp)
		if s > 24 {
			return sign
		}
		m := mant | 0x800000
		h := m >> s
		rem, half := m&(1<<s-1), uint32(1)<<(s-1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to infinity: that is right
	}
	return sign | uint16(h)
}

// Write writes the model for seed to f as GGUF, from f's current position
// (normally the start of a new file). GGUF's writer seeks, hence a file.
func Write(f *os.File, seed int64) error {
	if err := ggml.WriteGGUF(f, Metadata(), Tensors(seed)); err != nil {
		return fmt.Errorf("write tiny model: %w", err)
	}
	return nil
}

// WriteFile writes the model for seed to a new file at path (replacing it).
func WriteFile(path string, seed int64) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write tiny model: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write tiny model: %w", cerr)
		}
	}()
	return Write(f, seed)
}

// Encode returns the model for seed as GGUF bytes. It writes through a
// temporary file, which it removes.
func Encode(seed int64) ([]byte, error) {
	f, err := os.CreateTemp("", "gatecheck-tiny-*.gguf")
	if err != nil {
		return nil, fmt.Errorf("write tiny model: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := Write(f, seed); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("write tiny model: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("write tiny model: %w", err)
	}
	return b, nil
}
