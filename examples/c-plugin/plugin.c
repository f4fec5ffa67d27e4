// c-plugin: an rwasm hook plugin (world rwasm:plugin/hook@0.2.0) written in C, to show
// that the plugin ABI is the component model's, not Rust's.
//
// At pre-create it adds the env variables and annotations of its [plugin.config], or
// refuses the container when `deny` is set; at every other hook point it allows and
// changes nothing. It logs what it does through the host's `log` import.
//
// Config (all optional; any other key is an invalid-config error naming it):
//   env         = ["NAME=value", ...]   variables to add to process.env
//   annotations = ["key=value", ...]    annotations to add
//   deny        = "reason"              refuse every container, with this reason
//
// Ownership, as wit-bindgen's C bindings define it: the arguments of an export belong to
// the export, which frees them (the *_free functions); what an export returns (strings,
// lists) must come from malloc, as the generated post-return functions free it after the
// host has copied it. hook.c and hook.h are generated (`make bindings`); this file is the
// plugin.

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook.h"

typedef rwasm_plugin_types_error_t error_t;

// A `name=value` config entry, split; both NUL-terminated and owned.
typedef struct {
  char *name;
  char *value;
} pair_t;

typedef struct {
  pair_t *items;
  size_t len;
} pairs_t;

// The configuration of this instance, set by `configure` (called on every fresh instance
// before `invoke`).
static struct {
  pairs_t env;
  pairs_t annotations;
  char *deny;  // NULL unless configured
} settings;

// Allocation failure traps: the host reports it as a failed call.
static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    abort();
  }
  return p;
}

// A NUL-terminated, malloc'd copy of `len` bytes at `s`.
static char *dup_n(const uint8_t *s, size_t len) {
  char *out = xmalloc(len + 1);
  memcpy(out, s, len);
  out[len] = '\0';
  return out;
}

static bool str_is(const hook_string_t *s, const char *lit) {
  size_t n = strlen(lit);
  return s->len == n && memcmp(s->ptr, lit, n) == 0;
}

// A malloc'd WIT string of `s`, for what the plugin returns.
static hook_string_t wit_string(const char *s) {
  hook_string_t out;
  hook_string_dup(&out, s);
  return out;
}

static void host_log(rwasm_plugin_host_level_t level, const char *fmt, ...) {
  char line[512];
  va_list args;
  va_start(args, fmt);
  vsnprintf(line, sizeof line, fmt, args);
  va_end(args);
  hook_string_t message = {(uint8_t *)line, strlen(line)};
  rwasm_plugin_host_log(level, &message);
}

// Fills `err` with an invalid-config error whose message is printf'd from `fmt`.
static bool config_error(error_t *err, const char *fmt, ...) {
  char message[512];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  err->code = RWASM_PLUGIN_TYPES_ERROR_CODE_INVALID_CONFIG;
  err->message = wit_string(message);
  return false;
}

static const char *kind_of(const rwasm_plugin_types_config_value_t *v) {
  switch (v->tag) {
    case RWASM_PLUGIN_TYPES_CONFIG_VALUE_TEXT: return "text";
    case RWASM_PLUGIN_TYPES_CONFIG_VALUE_INTEGER: return "integer";
    case RWASM_PLUGIN_TYPES_CONFIG_VALUE_FLOAT: return "float";
    case RWASM_PLUGIN_TYPES_CONFIG_VALUE_BOOLEAN: return "boolean";
    default: return "texts";
  }
}

static void pairs_free(pairs_t *pairs) {
  for (size_t i = 0; i < pairs->len; i++) {
    free(pairs->items[i].name);
    free(pairs->items[i].value);
  }
  free(pairs->items);
  pairs->items = NULL;
  pairs->len = 0;
}

static void settings_free(void) {
  pairs_free(&settings.env);
  pairs_free(&settings.annotations);
  free(settings.deny);
  settings.deny = NULL;
}

// Parses the `key` entry, a list of `name=value` texts, into `out`.
static bool parse_pairs(const char *key, const rwasm_plugin_types_config_value_t *value,
                        pairs_t *out, error_t *err) {
  if (value->tag != RWASM_PLUGIN_TYPES_CONFIG_VALUE_TEXTS) {
    return config_error(err, "config key \"%s\": expected a list of texts (NAME=value entries), found %s",
                        key, kind_of(value));
  }
  const hook_list_string_t *list = &value->val.texts;
  pairs_free(out);
  out->items = xmalloc(list->len * sizeof(pair_t));
  for (size_t i = 0; i < list->len; i++) {
    const hook_string_t *entry = &list->ptr[i];
    char *text = dup_n(entry->ptr, entry->len);
    char *eq = strchr(text, '=');
    if (strlen(text) != entry->len || eq == NULL || eq == text) {
      config_error(err, "config key \"%s\": \"%s\" is not a NAME=value entry", key, text);
      free(text);
      return false;
    }
    *eq = '\0';
    out->items[out->len].name = text;  // cut at the `=`
    out->items[out->len].value = dup_n((const uint8_t *)eq + 1, strlen(eq + 1));
    out->len++;
  }
  return true;
}

bool exports_rwasm_plugin_hooks_configure(exports_rwasm_plugin_hooks_list_config_entry_t *config,
                                          error_t *err) {
  settings_free();
  bool ok = true;
  for (size_t i = 0; ok && i < config->len; i++) {
    const rwasm_plugin_types_config_entry_t *entry = &config->ptr[i];
    if (str_is(&entry->key, "env")) {
      ok = parse_pairs("env", &entry->value, &settings.env, err);
    } else if (str_is(&entry->key, "annotations")) {
      ok = parse_pairs("annotations", &entry->value, &settings.annotations, err);
    } else if (str_is(&entry->key, "deny")) {
      if (entry->value.tag != RWASM_PLUGIN_TYPES_CONFIG_VALUE_TEXT) {
        ok = config_error(err, "config key \"deny\": expected text (the reason), found %s",
                          kind_of(&entry->value));
      } else if (entry->value.val.text.len == 0) {
        ok = config_error(err, "config key \"deny\": the reason must not be empty");
      } else {
        free(settings.deny);
        settings.deny = dup_n(entry->value.val.text.ptr, entry->value.val.text.len);
      }
    } else {
      char *key = dup_n(entry->key.ptr, entry->key.len);
      ok = config_error(err, "unknown config key \"%s\"; known keys: env, annotations, deny", key);
      free(key);
    }
  }
  if (!ok) {
    settings_free();
  }
  exports_rwasm_plugin_hooks_list_config_entry_free(config);
  return ok;
}

// A malloc'd WIT list of `pairs`.
static hook_list_tuple2_string_string_t wit_pairs(const pairs_t *pairs) {
  hook_list_tuple2_string_string_t list = {NULL, 0};
  if (pairs->len == 0) {
    return list;
  }
  list.ptr = xmalloc(pairs->len * sizeof(hook_tuple2_string_string_t));
  for (size_t i = 0; i < pairs->len; i++) {
    list.ptr[i].f0 = wit_string(pairs->items[i].name);
    list.ptr[i].f1 = wit_string(pairs->items[i].value);
  }
  list.len = pairs->len;
  return list;
}

bool exports_rwasm_plugin_hooks_invoke(exports_rwasm_plugin_hooks_hook_call_t *call,
                                       exports_rwasm_plugin_hooks_verdict_t *ret, error_t *err) {
  memset(ret, 0, sizeof *ret);  // an allow verdict with an empty adjustment
  ret->tag = RWASM_PLUGIN_TYPES_VERDICT_ALLOW;
  if (call->point == RWASM_PLUGIN_TYPES_HOOK_POINT_PRE_CREATE) {
    char *id = dup_n(call->state.id.ptr, call->state.id.len);
    if (settings.deny != NULL) {
      host_log(RWASM_PLUGIN_HOST_LEVEL_INFO, "c-plugin: denying container %s: %s", id,
               settings.deny);
      ret->tag = RWASM_PLUGIN_TYPES_VERDICT_DENY;
      ret->val.deny = wit_string(settings.deny);
    } else {
      host_log(RWASM_PLUGIN_HOST_LEVEL_INFO,
               "c-plugin: adding %zu env variable(s) and %zu annotation(s) to container %s",
               settings.env.len, settings.annotations.len, id);
      ret->val.allow.env = wit_pairs(&settings.env);
      ret->val.allow.annotations = wit_pairs(&settings.annotations);
    }
    free(id);
  }
  exports_rwasm_plugin_hooks_hook_call_free(call);
  return true;
}
