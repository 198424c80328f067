/*
 * proto: the Kubernetes protobuf encoding.
 *
 * What is pinned: bodies that kubectl 1.33 really sent (captured with -v=9 against kpki
 * apiserver, see docs/proto.md) decode to the JSON upstream means by them; a rich object of
 * every wrapper and embedded-struct kind survives JSON -> protobuf -> JSON unchanged; zero
 * values follow the omit/keep rules; members with no field or the wrong type are reported as
 * dropped; the kind -> message mapping; the watch frame; and malformed input refused with a
 * message (no magic, truncated, bad wire data, unknown kind, contentEncoding, non-UTF-8
 * strings, bad times) while unknown field numbers become warnings.
 */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

/* ---- helpers ---- */

static unsigned char *from_hex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    unsigned char *out = malloc(n + 1);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
    *len = n;
    return out;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *value = json_loads(text, 0, &jerr);
    if (!value)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    return value;
}

static void assert_json_equal(const json_t *got, const char *want_text)
{
    json_t *want = parse(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("got  %s\nwant %s\n", g, w);
        free(g);
        free(w);
        fail();
    }
    json_decref(want);
}

/* Decodes a captured body and compares it with the JSON it means. */
static void check_capture(const char *hex, const char *want)
{
    size_t len = 0;
    unsigned char *body = from_hex(hex, &len);
    json_t *object = NULL;
    struct kp_strlist warnings = {0};
    struct kp_error err;
    assert_int_equal(kp_proto_decode(body, len, &object, &warnings, &err), KP_OK);
    assert_int_equal(warnings.count, 0);
    assert_json_equal(object, want);
    json_decref(object);
    kp_strlist_wipe(&warnings);
    free(body);
}

/* Encodes text and decodes it again: the result must be want, and exactly the members whose
 * notes start with the strings of dropped[] must have been left out. */
static void check_encoded(const char *text, const char *want, const char *const *dropped,
                          size_t dropped_count)
{
    json_t *object = parse(text);
    unsigned char *bytes = NULL;
    size_t len = 0;
    struct kp_strlist notes = {0};
    struct kp_error err;
    assert_int_equal(kp_proto_encode(object, &bytes, &len, &notes, &err), KP_OK);
    assert_true(kp_proto_is_envelope(bytes, len));
    for (size_t j = 0; j < notes.count && dropped_count == 0; j++)
        print_error("dropped: %s\n", notes.items[j]);
    assert_int_equal(notes.count, dropped_count);
    for (size_t i = 0; i < dropped_count; i++) {
        bool found = false;
        for (size_t j = 0; j < notes.count; j++)
            found |= strncmp(notes.items[j], dropped[i], strlen(dropped[i])) == 0;
        if (!found)
            fail_msg("no dropped entry starting with %s", dropped[i]);
    }
    json_t *back = NULL;
    assert_int_equal(kp_proto_decode(bytes, len, &back, NULL, &err), KP_OK);
    assert_json_equal(back, want);
    json_decref(back);
    json_decref(object);
    kp_strlist_wipe(&notes);
    free(bytes);
}

/* JSON -> envelope -> JSON must give the same object back, with nothing dropped. */
static void check_round_trip(const char *text)
{
    check_encoded(text, text, NULL, 0);
}

/* ---- bodies kubectl 1.33 sent ---- */

static void test_kubectl_namespace(void **state)
{
    (void)state;
    check_capture("6b3873000a0f0a02763112094e616d657370616365121d0a150a05666f6f3335"
                  "12001a0022002a003200380042001200"
                  "1a020a001a002200",
                  "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"foo35\"},"
                  "\"spec\":{},\"status\":{}}");
}

static void test_kubectl_secret(void **state)
{
    (void)state;
    /* --from-literal=user=alice --from-literal=empty=: an empty value stays in the map. */
    check_capture("6b3873000a0c0a027631120653656372657412370a190a02733912001a0764656661756c74"
                  "22002a0032003800420012090a05656d7074791200120d0a04757365721205616c696365"
                  "1a001a002200",
                  "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s9\","
                  "\"namespace\":\"default\"},\"data\":{\"empty\":\"\",\"user\":\"YWxpY2U=\"}}");
}

static void test_kubectl_token_request(void **state)
{
    (void)state;
    check_capture("6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b65"
                  "6e5265717565737412210a100a0012001a0022002a0032003800420012070a02613120901c"
                  "1a040a0012001a002200",
                  "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\","
                  "\"metadata\":{},\"spec\":{\"audiences\":[\"a1\"],\"expirationSeconds\":3600},"
                  "\"status\":{}}");
}

static void test_kubectl_self_subject_review(void **state)
{
    (void)state;
    check_capture("6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c66"
                  "5375626a656374526576696577121a0a100a0012001a0022002a00320038004200120"
                  "60a040a0012001a002200",
                  "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"SelfSubjectReview\","
                  "\"metadata\":{},\"status\":{\"userInfo\":{}}}");
}

static void test_kubectl_cluster_role_binding(void **state)
{
    (void)state;
    check_capture(
        "6b3873000a320a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311212436c7573"
        "746572526f6c6542696e64696e6712bd010a150a05637262313112001a0022002a003200380042001228"
        "0a04557365721219726261632e617574686f72697a6174696f6e2e6b38732e696f1a03626f6222001228"
        "0a0547726f75701219726261632e617574686f72697a6174696f6e2e6b38732e696f1a02673122001220"
        "0a0e536572766963654163636f756e7412001a05726f626f742205666f6f33341a2e0a19726261632e61"
        "7574686f72697a6174696f6e2e6b38732e696f120b436c7573746572526f6c651a04766965771a002200",
        "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"ClusterRoleBinding\","
        "\"metadata\":{\"name\":\"crb11\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
        "\"kind\":\"ClusterRole\",\"name\":\"view\"},\"subjects\":["
        "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"User\",\"name\":\"bob\"},"
        "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"Group\",\"name\":\"g1\"},"
        "{\"kind\":\"ServiceAccount\",\"name\":\"robot\",\"namespace\":\"foo34\"}]}");
}

static void test_kubectl_access_review_and_role(void **state)
{
    (void)state;
    /* Booleans are kept as sent (status.allowed false). */
    check_capture(
        "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a65"
        "637441636365737352657669657712440a100a0012001a0022002a0032003800420012260a240a0b6b75"
        "62652d73797374656d12046c6973741a0022002a077365637265747332003a001a08080012001a002000"
        "1a002200",
        "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SelfSubjectAccessReview\","
        "\"metadata\":{},\"spec\":{\"resourceAttributes\":{\"namespace\":\"kube-system\","
        "\"resource\":\"secrets\",\"verb\":\"list\"}},\"status\":{\"allowed\":false,"
        "\"denied\":false}}");
    check_capture(
        "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f6c65"
        "12340a190a02723912001a0764656661756c7422002a0032003800420012170a036765740a046c697374"
        "12001a04706f6473220270311a002200",
        "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"Role\",\"metadata\":"
        "{\"name\":\"r9\",\"namespace\":\"default\"},\"rules\":[{\"apiGroups\":[\"\"],"
        "\"resources\":[\"pods\"],\"resourceNames\":[\"p1\"],\"verbs\":[\"get\",\"list\"]}]}");
}

/* ---- round trips ---- */

static void test_round_trip_pod(void **state)
{
    (void)state;
    /* Embedded structs (volume sources, probe handlers, LocalObjectReference), IntOrString
     * both ways, quantities, times, owner references, managed fields (FieldsV1 as JSON). */
    check_round_trip(
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"d\","
        "\"uid\":\"u-1\",\"labels\":{\"app\":\"x\",\"empty\":\"\"},\"annotations\":{\"a\":\"b\"},"
        "\"creationTimestamp\":\"2026-11-29T10:00:00Z\",\"generation\":3,"
        "\"deletionGracePeriodSeconds\":0,"
        "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"rs\","
        "\"uid\":\"u-2\",\"controller\":true,\"blockOwnerDeletion\":false}],"
        "\"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
        "\"time\":\"2026-11-29T10:00:00Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":"
        "{\"f:labels\":{\".\":{}}}}}]},"
        "\"spec\":{\"nodeName\":\"n1\",\"serviceAccountName\":\"default\","
        "\"terminationGracePeriodSeconds\":0,\"automountServiceAccountToken\":false,"
        "\"volumes\":[{\"name\":\"cfg\",\"configMap\":{\"name\":\"cm\",\"optional\":true,"
        "\"items\":[{\"key\":\"k\",\"path\":\"p\"}]}},{\"name\":\"tok\",\"projected\":{\"sources\":"
        "[{\"serviceAccountToken\":{\"audience\":\"api\",\"expirationSeconds\":3607,\"path\":\"token\"}},"
        "{\"secret\":{\"name\":\"s\"}}]}},{\"name\":\"h\",\"hostPath\":{\"path\":\"/x\"}}],"
        "\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"command\":[\"sh\"],"
        "\"ports\":[{\"containerPort\":8080,\"protocol\":\"TCP\"}],"
        "\"env\":[{\"name\":\"E\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"k\"}}}],"
        "\"resources\":{\"limits\":{\"cpu\":\"500m\",\"memory\":\"64Mi\"}},"
        "\"livenessProbe\":{\"httpGet\":{\"path\":\"/healthz\",\"port\":8080},"
        "\"initialDelaySeconds\":5},"
        "\"readinessProbe\":{\"tcpSocket\":{\"port\":\"http\"}},"
        "\"securityContext\":{\"runAsUser\":0,\"runAsNonRoot\":false}}]},"
        "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.5\",\"conditions\":[{\"type\":"
        "\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"2026-11-29T10:00:01Z\"}],"
        "\"containerStatuses\":[{\"name\":\"c\",\"ready\":true,\"restartCount\":0,\"image\":"
        "\"busybox\",\"state\":{\"running\":{\"startedAt\":\"2026-11-29T10:00:01Z\"}}}]}}");
}

static void test_round_trip_other_kinds(void **state)
{
    (void)state;
    check_round_trip("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":"
                     "{\"name\":\"n1\",\"namespace\":\"kube-node-lease\"},\"spec\":{\"holderIdentity\":"
                     "\"n1\",\"leaseDurationSeconds\":40,\"leaseTransitions\":0,\"renewTime\":"
                     "\"2026-11-29T10:00:00.123456Z\"}}");
    check_round_trip("{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":\"e\","
                     "\"namespace\":\"d\"},\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\","
                     "\"namespace\":\"d\"},\"reason\":\"Started\",\"count\":2,\"type\":\"Normal\","
                     "\"firstTimestamp\":\"2026-11-29T10:00:00Z\",\"eventTime\":"
                     "\"2026-11-29T10:00:00.000001Z\",\"source\":{\"component\":\"kubelet\"}}");
    check_round_trip("{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\","
                     "\"metadata\":{},\"spec\":{\"user\":\"u\",\"groups\":[\"g\"],\"extra\":{\"k\":"
                     "[\"a\",\"b\"],\"none\":[]},\"nonResourceAttributes\":{\"path\":\"/x\",\"verb\":"
                     "\"get\"}},\"status\":{\"allowed\":false,\"reason\":\"no\"}}");
    check_round_trip("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"},"
                     "\"type\":\"kubernetes.io/tls\",\"immutable\":false,\"data\":{\"tls.crt\":"
                     "\"AAEC/w==\",\"empty\":\"\"}}");
    check_round_trip("{\"apiVersion\":\"v1\",\"kind\":\"Status\",\"metadata\":{},\"status\":"
                     "\"Failure\",\"message\":\"secrets \\\"x\\\" not found\",\"reason\":\"NotFound\","
                     "\"details\":{\"name\":\"x\",\"kind\":\"secrets\"},\"code\":404}");
    check_round_trip("{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\",\"gracePeriodSeconds\":0,"
                     "\"propagationPolicy\":\"Background\",\"preconditions\":{\"uid\":\"u\"}}");
    check_round_trip("{\"apiVersion\":\"v1\",\"kind\":\"SecretList\",\"metadata\":{"
                     "\"resourceVersion\":\"12\",\"continue\":\"abc\"},\"items\":[{\"metadata\":"
                     "{\"name\":\"a\"},\"data\":{\"k\":\"dg==\"}},{\"metadata\":{\"name\":\"b\"}}]}");
    check_round_trip("{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\"},"
                     "\"status\":{\"capacity\":{\"cpu\":\"2\"},\"addresses\":[{\"type\":\"InternalIP\","
                     "\"address\":\"10.0.0.1\"}],\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":"
                     "10250}},\"nodeInfo\":{\"kubeletVersion\":\"v1.31.0\"}}}");
}

/* ---- zero values and dropped members ---- */

static void test_zero_values(void **state)
{
    (void)state;
    /* An explicit 1970 time is a time, not the zero time (which Go sends as an empty
     * message and JSON as null). */
    check_round_trip("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
                     "\"creationTimestamp\":\"1970-01-01T00:00:00Z\"}}");
    /* null members are absent. */
    check_encoded("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                  "\"c\",\"creationTimestamp\":null},\"data\":null}",
                  "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"}}",
                  NULL, 0);
}

static void test_dropped_members(void **state)
{
    (void)state;
    static const char *const dropped[] = {
        "metadata.nope (no such field", "metadata.labels.a (not a string)",
        "binaryData.b (not valid base64)", "immutable (not a boolean)", "extra (no such field"};
    check_encoded("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
                  "\"nope\":1,\"labels\":{\"a\":5}},\"data\":{\"k\":\"v\"},\"binaryData\":"
                  "{\"b\":\"%%%\"},\"immutable\":\"yes\",\"extra\":{}}",
                  "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"},"
                  "\"data\":{\"k\":\"v\"}}",
                  dropped, sizeof(dropped) / sizeof(dropped[0]));
}

/* ---- kinds and frames ---- */

/* Past the dropped list's cap the encoding still succeeds (an object with thousands of unknown
 * members must not break protobuf answers or watches of its kind). */
static void test_many_dropped_members(void **state)
{
    (void)state;
    json_t *object = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                           "{\"name\":\"c\"}}");
    char key[32];
    for (int i = 0; i < KP_STRLIST_MAX + 100; i++) {
        snprintf(key, sizeof(key), "unknown%d", i);
        json_object_set_new(object, key, json_true());
    }
    unsigned char *bytes = NULL;
    size_t len = 0;
    struct kp_strlist dropped = {0};
    struct kp_error err;
    assert_int_equal(kp_proto_encode(object, &bytes, &len, &dropped, &err), KP_OK);
    assert_true(dropped.count > 0 && dropped.count < KP_STRLIST_MAX);
    json_t *back = NULL;
    assert_int_equal(kp_proto_decode(bytes, len, &back, NULL, &err), KP_OK);
    assert_json_equal(back, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                            "{\"name\":\"c\"}}");
    json_decref(back);
    json_decref(object);
    kp_strlist_wipe(&dropped);
    free(bytes);
}

static void test_find_kind(void **state)
{
    (void)state;
    struct {
        const char *api_version, *kind, *message;
    } cases[] = {
        {"v1", "Secret", "k8s.io.api.core.v1.Secret"},
        {"v1", "PodList", "k8s.io.api.core.v1.PodList"},
        {"rbac.authorization.k8s.io/v1", "ClusterRole", "k8s.io.api.rbac.v1.ClusterRole"},
        {"authentication.k8s.io/v1beta1", "SelfSubjectReview",
         "k8s.io.api.authentication.v1beta1.SelfSubjectReview"},
        {"coordination.k8s.io/v1", "Lease", "k8s.io.api.coordination.v1.Lease"},
        {"v1", "Status", "k8s.io.apimachinery.pkg.apis.meta.v1.Status"},
        {"rbac.authorization.k8s.io/v1", "DeleteOptions",
         "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"},
        {"meta.k8s.io/v1", "WatchEvent", "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const ProtobufCMessageDescriptor *desc =
            kp_proto_find_kind(cases[i].api_version, cases[i].kind);
        assert_non_null(desc);
        assert_string_equal(desc->name, cases[i].message);
    }
    assert_null(kp_proto_find_kind("v1", "Service"));
    assert_null(kp_proto_find_kind("meta.k8s.io/v1", "Table"));
    assert_null(kp_proto_find_kind("v2", "Secret"));
    assert_null(kp_proto_find_kind("v1", ""));
    assert_null(kp_proto_find_kind(NULL, "Secret"));
    assert_null(kp_proto_find("k8s.io.api.core.v1"));
}

static void test_watch_frame(void **state)
{
    (void)state;
    json_t *object = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                           "{\"name\":\"c\",\"resourceVersion\":\"7\"}}");
    unsigned char *frame = NULL;
    size_t len = 0;
    struct kp_error err;
    assert_int_equal(kp_proto_watch_frame("ADDED", object, &frame, &len, NULL, &err), KP_OK);
    size_t body_len = (size_t)frame[0] << 24 | (size_t)frame[1] << 16 | (size_t)frame[2] << 8 |
                      frame[3];
    assert_int_equal(body_len + 4, len);
    /* The event itself has no envelope; its object does. */
    json_t *event = NULL;
    assert_int_equal(kp_proto_message_to_json(
                         kp_proto_find("k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent"),
                         frame + 4, body_len, &event, NULL, &err),
                     KP_ERR_INVALID); /* object.raw is protobuf, not JSON */
    assert_non_null(strstr(err.message, "object"));
    assert_false(kp_proto_is_envelope(frame + 4, body_len));
    const unsigned char *magic = memmem(frame, len, KP_PROTO_MAGIC, KP_PROTO_MAGIC_LEN);
    assert_non_null(magic);
    json_t *inner = NULL;
    assert_int_equal(kp_proto_decode(magic, (size_t)(frame + len - magic), &inner, NULL, &err),
                     KP_OK);
    assert_json_equal(inner, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                             "{\"name\":\"c\",\"resourceVersion\":\"7\"}}");
    assert_non_null(memmem(frame, len, "ADDED", 5));
    json_decref(inner);
    json_decref(object);
    free(frame);
}

/* ---- refusals ---- */

static void expect_decode_error(const void *data, size_t len, const char *words)
{
    json_t *object = NULL;
    struct kp_error err;
    assert_int_equal(kp_proto_decode(data, len, &object, NULL, &err), KP_ERR_INVALID);
    assert_null(object);
    if (!strstr(err.message, words))
        fail_msg("error \"%s\" lacks \"%s\"", err.message, words);
}

static void test_decode_refusals(void **state)
{
    (void)state;
    expect_decode_error("", 0, "k8s\\0");
    expect_decode_error("{\"kind\":\"Secret\"}", 17, "k8s\\0");
    expect_decode_error("k8s", 3, "k8s\\0");
    /* a length running past the end */
    expect_decode_error("k8s\0\x0a\x7f", 6, "not a valid runtime.Unknown");
    /* no typeMeta */
    expect_decode_error("k8s\0\x12\x00", 6, "no apiVersion or kind");
    /* typeMeta {v1, Service}: a kind with no message */
    expect_decode_error("k8s\0\x0a\x0d\x0a\x02v1\x12\x07Service", 19, "no protobuf message");
    /* a kind that is not UTF-8: refused with the bytes shown as '?' (the message stays JSON) */
    expect_decode_error("k8s\0\x0a\x0a\x0a\x02v1\x12\x04N\xc3\xa9x", 16,
                        "no protobuf message for v1 N??x");
    /* contentEncoding gzip */
    expect_decode_error("k8s\0\x0a\x0a\x0a\x02v1\x12\x04Node\x1a\x04gzip", 22,
                        "contentEncoding");
    /* raw that is not a Node message (field 1 with wire type 7) */
    expect_decode_error("k8s\0\x0a\x0a\x0a\x02v1\x12\x04Node\x12\x01\x0f", 19,
                        "not a valid k8s.io.api.core.v1.Node");
    /* a name that is not UTF-8: Node{metadata{name: "\xff"}} */
    expect_decode_error("k8s\0\x0a\x0a\x0a\x02v1\x12\x04Node\x12\x05\x0a\x03\x0a\x01\xff", 23,
                        "metadata.name: not valid UTF-8");
    /* creationTimestamp with nanos out of range: Node{metadata{creationTimestamp{nanos -1}}} */
    expect_decode_error("k8s\0\x0a\x0a\x0a\x02v1\x12\x04Node\x12\x0f\x0a\x0d\x42\x0b\x10"
                        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                        33, "metadata.creationTimestamp: nanos out of range");
}

static void test_unknown_fields_warn(void **state)
{
    (void)state;
    /* ConfigMap{metadata{name "c"}, field 99 varint 1}: decoded, with one warning. */
    static const char body[] = "k8s\0\x0a\x0f\x0a\x02v1\x12\x09" "ConfigMap\x12\x08\x0a\x03\x0a\x01"
                               "c\x98\x06\x01";
    json_t *object = NULL;
    struct kp_strlist warnings = {0};
    struct kp_error err;
    assert_int_equal(kp_proto_decode(body, sizeof(body) - 1, &object, &warnings, &err), KP_OK);
    assert_json_equal(object, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                              "{\"name\":\"c\"}}");
    assert_int_equal(warnings.count, 1);
    assert_non_null(strstr(warnings.items[0], "unknown field 99 in k8s.io.api.core.v1.ConfigMap"));
    json_decref(object);
    kp_strlist_wipe(&warnings);
}

static void test_encode_refusals(void **state)
{
    (void)state;
    unsigned char *bytes = NULL;
    size_t len = 0;
    struct kp_error err;
    json_t *object = parse("{\"kind\":\"Secret\"}");
    assert_int_equal(kp_proto_encode(object, &bytes, &len, NULL, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "no protobuf message"));
    json_decref(object);
    object = parse("{\"apiVersion\":\"meta.k8s.io/v1\",\"kind\":\"Table\"}");
    assert_int_equal(kp_proto_encode(object, &bytes, &len, NULL, &err), KP_ERR_INVALID);
    json_decref(object);
    object = parse("[1]");
    assert_int_equal(kp_proto_json_to_message(kp_proto_find("k8s.io.api.core.v1.Secret"), object,
                                              &bytes, &len, NULL, &err),
                     KP_ERR_INVALID);
    json_decref(object);
    assert_null(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubectl_namespace),
        cmocka_unit_test(test_kubectl_secret),
        cmocka_unit_test(test_kubectl_token_request),
        cmocka_unit_test(test_kubectl_self_subject_review),
        cmocka_unit_test(test_kubectl_cluster_role_binding),
        cmocka_unit_test(test_kubectl_access_review_and_role),
        cmocka_unit_test(test_round_trip_pod),
        cmocka_unit_test(test_round_trip_other_kinds),
        cmocka_unit_test(test_zero_values),
        cmocka_unit_test(test_dropped_members),
        cmocka_unit_test(test_many_dropped_members),
        cmocka_unit_test(test_find_kind),
        cmocka_unit_test(test_watch_frame),
        cmocka_unit_test(test_decode_refusals),
        cmocka_unit_test(test_unknown_fields_warn),
        cmocka_unit_test(test_encode_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
