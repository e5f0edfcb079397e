// SPDX-License-Identifier: Apache-2.0
// The admin server's status page (docs/admin-api.md, "Status page"): plain
// HTML, CSS and JavaScript compiled into the binary, nothing fetched from
// elsewhere. The page polls the JSON admin API every second.
#pragma once

#include <string>
#include <string_view>

namespace turn::cp::status_page {

// The page itself (after login).
[[nodiscard]] std::string_view page_html();
// The login form; `message` (plain text, escaped here) is shown above it.
[[nodiscard]] std::string login_html(std::string_view message);
[[nodiscard]] std::string_view app_js();
[[nodiscard]] std::string_view app_css();

// Content-Security-Policy for every page response: only this server.
inline constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

}  // namespace turn::cp::status_page
