/*
 * The authenticated identity (k8s.io/apiserver/pkg/authentication/user.Info) and its
 * authentication.k8s.io/v1 UserInfo JSON form (see auth.h).
 */
#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>

void kp_user_wipe(struct kp_user *user)
{
    if (user == NULL) {
        return;
    }
    free(user->name);
    free(user->uid);
    kp_strlist_wipe(&user->groups);
    json_decref(user->extra);
    memset(user, 0, sizeof(*user));
}

bool kp_user_in_group(const struct kp_user *user, const char *group)
{
    if (user == NULL || group == NULL) {
        return false;
    }
    return kp_strlist_contains(&user->groups, group);
}

json_t *kp_user_to_json(const struct kp_user *user)
{
    /* UserInfo's members are all `omitempty` upstream: an absent uid, no groups or no extra
     * leave the member out rather than writing "" or []. */
    json_t *info = json_object();
    if (info == NULL) {
        return NULL;
    }
    bool ok = true;
    if (user->name != NULL && user->name[0] != '\0') {
        ok = json_object_set_new(info, "username", json_string(user->name)) == 0;
    }
    if (ok && user->uid != NULL && user->uid[0] != '\0') {
        ok = json_object_set_new(info, "uid", json_string(user->uid)) == 0;
    }
    if (ok && user->groups.count > 0) {
        json_t *groups = json_array();
        ok = groups != NULL && json_object_set_new(info, "groups", groups) == 0;
        for (size_t i = 0; ok && i < user->groups.count; i++) {
            ok = json_array_append_new(groups, json_string(user->groups.items[i])) == 0;
        }
    }
    if (ok && json_is_object(user->extra) && json_object_size(user->extra) > 0) {
        /* A copy: the caller may edit the result without touching the user. */
        ok = json_object_set_new(info, "extra", json_deep_copy(user->extra)) == 0;
    }
    if (!ok) {
        json_decref(info);
        return NULL;
    }
    return info;
}
