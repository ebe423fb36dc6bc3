/* prompt.c — label -> prompt text ("a photo of a {}.").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clip.h"

#include <string.h>

char *
clip_format_prompt (const char *template_, const char *label, GError **error)
{
  GString *prompt;
  const char *p, *hole;

  g_return_val_if_fail (template_ != NULL, NULL);
  g_return_val_if_fail (label != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_utf8_validate (template_, -1, NULL)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
        "Prompt template is not valid UTF-8");
    return NULL;
  }
  if (!g_utf8_validate (label, -1, NULL)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
        "Label is not valid UTF-8");
    return NULL;
  }
  /* Without a hole every label would get the same prompt, and so the same score. */
  if (strstr (template_, "{}") == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
        "Prompt template \"%s\" has no \"{}\" for the label (e.g. \"%s\")", template_,
        CLIP_DEFAULT_TEMPLATE);
    return NULL;
  }

  /* One pass over the template: a "{}" inside the label is not expanded again. */
  prompt = g_string_sized_new (strlen (template_) + strlen (label) + 8);
  for (p = template_; (hole = strstr (p, "{}")) != NULL; p = hole + 2) {
    g_string_append_len (prompt, p, hole - p);
    g_string_append (prompt, label);
  }
  g_string_append (prompt, p);
  return g_string_free (prompt, FALSE);
}
