/*
 * proto/proto.h - the Kubernetes protobuf encoding (application/vnd.kubernetes.protobuf).
 *
 * A body is the four bytes "k8s\0" and a runtime.Unknown message: typeMeta {apiVersion, kind},
 * raw (the object's own message), contentEncoding, contentType. The object messages are
 * compiled by protoc-c from proto/ (upstream's field names and numbers); one converter maps any
 * of them to and from the server's JSON objects by walking the protobuf-c descriptors, with a
 * few wrapper types that JSON spells differently (Time, MicroTime, Duration, Quantity,
 * IntOrString, RawExtension, FieldsV1, ExtraValue). docs/proto.md has the rules.
 *
 * Thread-safe: no state beyond the static descriptors.
 */
#ifndef KP_PROTO_PROTO_H
#define KP_PROTO_PROTO_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "core/strlist.h"
#include "kpki/error.h"

#define KP_PROTO_MEDIA_TYPE "application/vnd.kubernetes.protobuf"
#define KP_PROTO_MAGIC "k8s\0"
#define KP_PROTO_MAGIC_LEN 4

/* The message named by its full protobuf name ("k8s.io.api.core.v1.Secret"), or NULL. */
const ProtobufCMessageDescriptor *kp_proto_find(const char *full_name);

/* The message of a kind ("v1", "Secret"; "rbac.authorization.k8s.io/v1", "Role"). Status,
 * DeleteOptions, WatchEvent and the *Options kinds are meta/v1's in every group. NULL when
 * the kind has no message. */
const ProtobufCMessageDescriptor *kp_proto_find_kind(const char *api_version, const char *kind);

/* ---- one message (no envelope) ---- */

/* Decodes data as a desc message into a JSON object (new reference in *object). Fields whose
 * number desc does not know are left out, each noted in warnings ("unknown field 99 in
 * k8s.io.api.core.v1.PodSpec"; warnings may be NULL). Errors: KP_ERR_INVALID (not a valid
 * message, a string that is not UTF-8, a wrapper value out of range) with the field's path. */
KP_MUST_CHECK enum kp_result kp_proto_message_to_json(const ProtobufCMessageDescriptor *desc,
                                                      const void *data, size_t len,
                                                      json_t **object,
                                                      struct kp_strlist *warnings,
                                                      struct kp_error *err);

/* Encodes a JSON object (borrowed) as a desc message. *out: free with free(). A member the
 * message has no field for, or whose value has the wrong JSON type, is left out of the bytes
 * and its path added to dropped ("spec.foo"; may be NULL); top-level apiVersion and kind are
 * the envelope's and never dropped. Errors: KP_ERR_INVALID (object is not an object),
 * KP_ERR_INTERNAL (out of memory). */
KP_MUST_CHECK enum kp_result kp_proto_json_to_message(const ProtobufCMessageDescriptor *desc,
                                                      const json_t *object, unsigned char **out,
                                                      size_t *len, struct kp_strlist *dropped,
                                                      struct kp_error *err);

/* ---- bodies ---- */

/* True if data starts with the magic. */
bool kp_proto_is_envelope(const void *data, size_t len);

/* Decodes a protobuf body into a JSON object with apiVersion and kind from the envelope (new
 * reference). Errors: KP_ERR_INVALID (no magic, a bad envelope, a contentEncoding, a kind with
 * no message, or the object's own errors above), with a message naming the problem. */
KP_MUST_CHECK enum kp_result kp_proto_decode(const void *data, size_t len, json_t **object,
                                             struct kp_strlist *warnings, struct kp_error *err);

/* Encodes a JSON object whose apiVersion and kind name a message. *out: free with free().
 * dropped as for kp_proto_json_to_message. Errors: KP_ERR_INVALID (no apiVersion or kind,
 * or no message for them). */
KP_MUST_CHECK enum kp_result kp_proto_encode(const json_t *object, unsigned char **out,
                                             size_t *len, struct kp_strlist *dropped,
                                             struct kp_error *err);

/* One frame of a protobuf watch stream (Content-Type application/vnd.kubernetes.protobuf;
 * stream=watch): a 4-byte big-endian length, then a meta/v1 WatchEvent message without an
 * envelope whose object.raw is the object's envelope (kp_proto_encode). *out: free with free(). */
KP_MUST_CHECK enum kp_result kp_proto_watch_frame(const char *type, const json_t *object,
                                                  unsigned char **out, size_t *len,
                                                  struct kp_strlist *dropped,
                                                  struct kp_error *err);

#endif
