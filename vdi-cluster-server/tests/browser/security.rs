//! What the page's HTTP answers promise, without a browser: the redirect,
//! the security headers, no secret in the HTML, the cookie's attributes,
//! and when the cookie counts.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE, X_FRAME_OPTIONS};
use serde_json::Value;

use vdi_cluster_server::auth::Role;

use crate::common::{ControlPlane, CpOptions, JWT_SECRET, admin_token};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_page_is_served_strictly_and_its_cookie_is_guarded() {
    let cp = ControlPlane::start(CpOptions::default()).await;
    let http = no_redirects();

    for path in ["/", "/admin"] {
        let r = http.get(format!("{}{path}", cp.url)).send().await.unwrap();
        assert!(r.status().is_redirection(), "{path}: {}", r.status());
        assert_eq!(r.headers()[LOCATION], "/admin/");
    }
    let page = http.get(format!("{}/admin/", cp.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(page.headers()[X_FRAME_OPTIONS], "DENY");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("type=\"module\""),
        "the page loads its modules"
    );
    assert!(
        !html.contains("eyJ") && !html.contains(JWT_SECRET),
        "a secret in the HTML"
    );
    let js = http
        .get(format!("{}/admin/js/main.js", cp.url))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let missing = http
        .get(format!("{}/admin/nope.js", cp.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Sign in: the JWT goes into an HttpOnly, SameSite=Strict cookie.
    let token = admin_token();
    let session = format!("{}/api/vdi/auth/session", cp.url);
    let r = http
        .post(&session)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/api/"] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["roles"], serde_json::json!(["ADMIN"]));
    let csrf = body["csrfToken"].as_str().unwrap().to_owned();
    let jar = cookie.split(';').next().unwrap().to_owned();

    let reconcile = format!("{}/api/vdi/workers/reconcile", cp.url);
    let with_cookie = |site: &'static str| {
        http.post(&reconcile)
            .header("cookie", &jar)
            .header("sec-fetch-site", site)
    };
    // Another site's page: the cookie does not count.
    let r = with_cookie("cross-site").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The page's origin, without the CSRF token: refused, with the reason.
    let r = with_cookie("same-origin").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("x-csrf-token"),
        "{body}"
    );
    let r = with_cookie("same-origin")
        .header("x-csrf-token", "0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = with_cookie("same-origin")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Over plain HTTP browsers send no Sec-Fetch-Site: the token is the
    // proof, in the header or, for the events stream, the query string.
    let workers = format!("{}/api/vdi/workers", cp.url);
    let r = http
        .get(&workers)
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a cookie alone");
    let r = http
        .get(&workers)
        .header("cookie", &jar)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let events = format!("{}/api/vdi/events?csrf={csrf}", cp.url);
    let r = http
        .get(&events)
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(r);
    let r = http
        .post(&reconcile)
        .header("cookie", &jar)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A PROCTOR's cookie opens operator routes, never admin ones.
    let proctor = crate::harness::token("p1", Role::Proctor);
    let r = http
        .post(&session)
        .bearer_auth(&proctor)
        .send()
        .await
        .unwrap();
    let jar = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body: Value = r.json().await.unwrap();
    let audit = http
        .get(format!("{}/api/vdi/audit", cp.url))
        .header("cookie", &jar)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(audit.status(), StatusCode::FORBIDDEN);
    let workers = http
        .get(format!("{}/api/vdi/workers", cp.url))
        .header("cookie", &jar)
        .header("sec-fetch-site", "same-origin")
        .header("x-csrf-token", body["csrfToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(workers.status(), StatusCode::OK);

    // Signing out clears the cookie.
    let r = http.delete(&session).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}
