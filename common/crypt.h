/* Encryption at rest: authenticated, streaming, from libsodium (crypto_secretstream_
 * xchacha20poly1305). A stream is a fixed header followed by chunks:
 *
 *   header (96 bytes, readable without the key, authenticated with every chunk)
 *     0  8  magic "HMCRYPT\0"
 *     8  1  format version (1)
 *     9  1  key source: 1 raw key (key file), 2 passphrase (Argon2id13)
 *    10  2  reserved (0)
 *    12  4  plaintext bytes per chunk, big-endian (1 KiB .. 4 MiB)
 *    16 16  key id: BLAKE2b of the key (tells which key is needed; room for rotation)
 *    32 16  Argon2id salt (zero for a raw key)
 *    48  8  Argon2id opslimit, big-endian (0 for a raw key)
 *    56  8  Argon2id memlimit in bytes, big-endian (0 for a raw key)
 *    64  8  reserved (0)
 *    72 24  secretstream header (its nonce)
 *   chunks: chunk-size plaintext bytes + 17 each; the last one (possibly shorter, possibly
 *   empty) carries the FINAL tag.
 *
 * The decryptor hands out only authenticated bytes, and fails (HM_EXIT_CORRUPT unless said
 * otherwise) on: a wrong key (key id, before any chunk), a tampered header or chunk, chunks
 * reordered or dropped (the nonce advances per chunk), a stream cut short (no FINAL chunk)
 * and bytes after the FINAL chunk. Keys live in sodium_malloc'd memory, wiped on free. */
#ifndef HM_CRYPT_H
#define HM_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define HM_CRYPT_KEY_BYTES 32
#define HM_CRYPT_HEADER_BYTES 96
#define HM_CRYPT_ABYTES 17 /* per chunk: MAC and tag */
#define HM_CRYPT_DEFAULT_CHUNK (64u * 1024)
#define HM_CRYPT_MIN_CHUNK 1024u
#define HM_CRYPT_MAX_CHUNK (4u * 1024 * 1024)
/* Argon2id parameters for new passphrase streams: 3 passes over 32 MiB (about a tenth of
 * a second here) keeps a backup's peak memory far under 64 MB. Readers accept up to the
 * bounds below, so stronger settings can come later; more is refused as hostile. */
#define HM_CRYPT_OPSLIMIT 3u
#define HM_CRYPT_MEMLIMIT (32u * 1024 * 1024)
#define HM_CRYPT_MAX_OPSLIMIT 16u
#define HM_CRYPT_MAX_MEMLIMIT (256u * 1024 * 1024)

enum { HM_CRYPT_KDF_RAW = 1, HM_CRYPT_KDF_ARGON2ID = 2 };

/* A key or a passphrase (opaque; sodium_malloc'd). */
typedef struct hm_crypt_secret hm_crypt_secret;

/* A key file: exactly 32 raw bytes, or 64 hex digits (optionally followed by a newline).
 * The file must be a regular file, not readable or writable by group or others
 * (HM_EXIT_PERMISSION otherwise). */
int hm_crypt_secret_from_key_file(const char *path, hm_crypt_secret **out, hm_error *err);
/* A passphrase file (same permission rule): its content without one trailing newline; at
 * least 8 bytes, at most 1024. */
int hm_crypt_secret_from_passphrase_file(const char *path, hm_crypt_secret **out, hm_error *err);
/* From memory (tests, and keys already loaded). */
int hm_crypt_secret_from_key(const unsigned char key[HM_CRYPT_KEY_BYTES], hm_crypt_secret **out,
			     hm_error *err);
int hm_crypt_secret_from_passphrase(const char *pass, size_t len, hm_crypt_secret **out, hm_error *err);
void hm_crypt_secret_free(hm_crypt_secret *s);
/* Key id of a raw key as 32 hex digits (for metadata; "" for a passphrase). */
const char *hm_crypt_secret_key_id(const hm_crypt_secret *s);

typedef struct hm_crypt_header {
	int version;
	int kdf;
	uint32_t chunk_size;
	unsigned char key_id[16];
	unsigned char salt[16];
	uint64_t opslimit, memlimit;
	unsigned char stream[24];
} hm_crypt_header;

/* Parse and bound-check a header (untrusted bytes). 0 or -1 (HM_EXIT_CORRUPT). */
int hm_crypt_header_parse(const unsigned char *buf, size_t len, hm_crypt_header *h, hm_error *err);
/* Hex of a key id into out (33 bytes). */
void hm_crypt_key_id_hex(const unsigned char id[16], char out[33]);

/* Where a stream's output goes: return 0, or -1 with err set to stop. */
typedef int (*hm_crypt_sink)(void *ctx, const void *data, size_t len, hm_error *err);
/* Where a reader's input comes from: *got = 0 at the end. */
typedef int (*hm_crypt_source)(void *ctx, void *buf, size_t len, size_t *got, hm_error *err);

typedef struct hm_crypt_enc hm_crypt_enc;
/* chunk_size 0: HM_CRYPT_DEFAULT_CHUNK. The header goes to sink at once. */
int hm_crypt_enc_new(hm_crypt_secret *s, uint32_t chunk_size, hm_crypt_sink sink, void *ctx,
		     hm_crypt_enc **out, hm_error *err);
int hm_crypt_enc_write(hm_crypt_enc *e, const void *data, size_t len, hm_error *err);
/* Write the FINAL chunk. The stream is complete only after this returned 0. */
int hm_crypt_enc_finish(hm_crypt_enc *e, hm_error *err);
void hm_crypt_enc_free(hm_crypt_enc *e);

typedef struct hm_crypt_dec hm_crypt_dec;
/* Push-style decryption: ciphertext in, authenticated plaintext out through sink. */
int hm_crypt_dec_new(hm_crypt_secret *s, hm_crypt_sink sink, void *ctx, hm_crypt_dec **out, hm_error *err);
int hm_crypt_dec_write(hm_crypt_dec *d, const void *data, size_t len, hm_error *err);
/* The end of the ciphertext: fails unless the FINAL chunk was seen and nothing followed. */
int hm_crypt_dec_finish(hm_crypt_dec *d, hm_error *err);
void hm_crypt_dec_free(hm_crypt_dec *d);

typedef struct hm_crypt_reader hm_crypt_reader;
/* Pull-style decryption (for libarchive read callbacks): plaintext from a ciphertext source.
 * hm_crypt_reader_read gives *got = 0 only at a verified end. */
int hm_crypt_reader_new(hm_crypt_secret *s, hm_crypt_source src, void *ctx, hm_crypt_reader **out,
			hm_error *err);
int hm_crypt_reader_read(hm_crypt_reader *r, void *buf, size_t len, size_t *got, hm_error *err);
void hm_crypt_reader_free(hm_crypt_reader *r);

/* Whole small buffers (metadata): *out malloc'd. */
int hm_crypt_encrypt_buffer(hm_crypt_secret *s, const void *in, size_t len, unsigned char **out,
			    size_t *outlen, hm_error *err);
int hm_crypt_decrypt_buffer(hm_crypt_secret *s, const void *in, size_t len, unsigned char **out,
			    size_t *outlen, hm_error *err);

#endif
