// Package tiny writes gatecheck's tiny model: a random-weight llama model in
// GGUF, a few hundred kilobytes, that a real Ollama (or llama.cpp) loads and
// runs like any other model. It answers gibberish, but real gibberish: its
// prompts are tokenised by a real SentencePiece vocabulary, its answers are
// sampled token by token and streamed, and the token counts Ollama reports
// are real. That is all a security scenario needs, and it needs no download.
//
// The file is written with the ollama module's own GGUF writer
// (github.com/ollama/ollama/fs/ggml.WriteGGUF) and holds:
//
//   - llama architecture metadata: [BlockCount] blocks, [EmbeddingLength]
//     wide, [HeadCount] attention heads of which [HeadCountKV] key/value heads
//     (grouped-query attention), a [FeedForwardLength] SwiGLU feed-forward,
//     rotary embeddings over whole heads, RMS norms, a [ContextLength]-token
//     context;
//   - the tensors llama.cpp and Ollama's llama model read: token_embd,
//     blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,ffn_norm,ffn_gate,
//     ffn_up,ffn_down}, output_norm and output. Matrices are F16, norms F32
//     (all ones), the rest seeded gaussian noise;
//   - a SentencePiece ("llama") vocabulary: <unk>, <s>, </s>, the 256 byte
//     fallback tokens <0x00>..<0xFF>, then a few hundred pieces (single
//     characters and every "▁"-prefixed prefix of a few hundred common
//     words), with scores and token types, as the tokenizer.ggml.* keys
//     llama.cpp expects;
//   - a chat template (tokenizer.chat_template, Zephyr's) that Ollama
//     recognises when it creates a model from the file.
//
// The output matrix weighs word pieces well above byte tokens, so the
// gibberish is mostly words. The weights are a function of the seed only:
// the same seed writes the same bytes.
package tiny
