/* SPDX-License-Identifier: LGPL-2.1-or-later */
typedef int clip_placeholder_prompt;
