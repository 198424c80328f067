/*
 * fuzz_proto - kp_proto_decode (proto/proto.h): the protobuf request bodies any authenticated
 * client may send (Content-Type application/vnd.kubernetes.protobuf).
 *
 * Input: the body as sent, "k8s\0" envelope included.
 *
 * Invariants beyond "no crash, no leak, no UB": a refusal is KP_ERR_INVALID with a message and
 * leaves the object NULL; a decoded object is a JSON object whose apiVersion and kind are
 * strings, it encodes again with nothing dropped, and decoding that gives the same object
 * (decode . encode . decode = decode).
 */
#include "fuzz.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *object = NULL;
    struct kp_strlist warnings = {0};
    struct kp_error err;
    enum kp_result rc = kp_proto_decode(data, size, &object, &warnings, &err);
    kp_strlist_wipe(&warnings);
    if (rc != KP_OK) {
        FUZZ_CHECK(rc == KP_ERR_INVALID && object == NULL && err.message[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(json_is_object(object));
    FUZZ_CHECK(json_is_string(json_object_get(object, "apiVersion")));
    FUZZ_CHECK(json_is_string(json_object_get(object, "kind")));
    unsigned char *bytes = NULL;
    size_t len = 0;
    struct kp_strlist dropped = {0};
    FUZZ_CHECK(kp_proto_encode(object, &bytes, &len, &dropped, &err) == KP_OK);
    FUZZ_CHECK(dropped.count == 0);
    json_t *again = NULL;
    FUZZ_CHECK(kp_proto_decode(bytes, len, &again, NULL, &err) == KP_OK);
    FUZZ_CHECK(json_equal(again, object));
    json_decref(again);
    free(bytes);
    kp_strlist_wipe(&dropped);
    json_decref(object);
    return 0;
}
