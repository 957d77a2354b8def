//! GraphiQL, served whole by the API: the page at `GET /graphql` and its
//! pinned scripts and styles under `/graphiql/` (vendored by
//! `./dev vendor-graphiql`), so it works on a machine without internet. The
//! page may load nothing from elsewhere: its content security policy allows
//! only this origin.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use api_core::ApiError;

use crate::refusal::refusal;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src data:; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One vendored file: its name under `/graphiql/`, its type, its gzipped bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    gzipped: &'static [u8],
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The vendored files, gzipped, by name.
const ASSETS: &[Asset] = &[
    Asset::new(
        "graphiql.min.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/graphiql.min.js.gz"),
    ),
    Asset::new(
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.css.gz"),
    ),
    Asset::new(
        "react.production.min.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/react.production.min.js.gz"),
    ),
    Asset::new(
        "react-dom.production.min.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/react-dom.production.min.js.gz"),
    ),
];

impl Asset {
    const fn new(name: &'static str, content_type: &'static str, gzipped: &'static [u8]) -> Self {
        Self {
            name,
            content_type,
            gzipped,
        }
    }
}

const PAGE: &str = include_str!("../assets/graphiql/index.html");
const INIT: &str = include_str!("../assets/graphiql/init.js");

/// `GET /graphql`: the GraphiQL page.
pub async fn page() -> Response {
    with_policy(
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response(),
        CONTENT_SECURITY_POLICY,
    )
}

/// `GET /graphiql/{file}`: one of the page's assets. The vendored files are
/// stored gzipped and sent as they are; every browser accepts gzip, and a
/// client that does not is told so rather than sent bytes it cannot read.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    if name == "init.js" {
        return with_policy(
            (
                [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                INIT,
            )
                .into_response(),
            CONTENT_SECURITY_POLICY,
        );
    }
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return refusal(
            StatusCode::NOT_FOUND,
            ApiError::NoSuchResource("GraphiQL asset"),
        );
    };
    if !accepts_gzip(&headers) {
        return refusal(
            StatusCode::NOT_ACCEPTABLE,
            ApiError::invalid(
                "accept-encoding",
                "GraphiQL's assets are served gzip-encoded; send Accept-Encoding: gzip",
            ),
        );
    }
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CONTENT_ENCODING, "gzip"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        asset.gzipped,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    with_policy(response, CONTENT_SECURITY_POLICY)
}

/// `response` with the content security policy `policy` and no sniffing of
/// its type: what every page and asset the server sends carries.
pub(crate) fn with_policy(mut response: Response, policy: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Whether `Accept-Encoding` lists gzip with a quality above zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        headers
    }

    #[test]
    fn gzip_is_accepted_when_listed_with_a_quality_above_zero() {
        assert!(accepts_gzip(&with("gzip, deflate, br")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("br, identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn every_asset_the_page_names_is_served() {
        for src in PAGE.split('"').filter(|s| s.starts_with("/graphiql/")) {
            let name = &src["/graphiql/".len()..];
            assert!(
                name == "init.js" || ASSETS.iter().any(|a| a.name == name),
                "the page names {src}, which is not served"
            );
        }
    }
}
