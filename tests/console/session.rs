//! Sessions over HTTP and in the browser: the cookie, CSRF, a user removed from the htpasswd file, logging in and out.

use super::*;

#[test]
fn login_sets_a_strict_cookie_and_mutations_need_the_csrf_token() {
    if !peers() {
        return;
    }
    let c = console(&[]);
    let s = &c.server;

    let (bad, none) = login(s, USER, "wrong");
    assert_eq!(bad.status, 401, "{}", bad.text());
    assert!(none.is_none());
    let (r, session) = login(s, USER, PASSWORD);
    assert_eq!(r.status, 200, "{}", r.text());
    let session = session.unwrap();
    let set = r.header("set-cookie").unwrap();
    assert!(session.cookie.starts_with("jetpack_session="), "{set}");
    let attrs: Vec<String> = set
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for want in ["httponly", "samesite=strict", "secure", "path=/"] {
        assert!(attrs.iter().any(|a| a == want), "no {want} in {set}");
    }
    let answer = r.json();
    assert_eq!(answer["user"], USER, "{answer}");
    assert_eq!(answer["auth"], true, "{answer}");
    assert!(session.csrf.len() >= 16, "{answer}");
    assert!(answer["expires"].is_string() || answer["expires"].is_number());

    // The cookie alone reads; GET /v1/session gives the same token back.
    let cookie = session.cookie_header();
    let again = fetch(s, &["-H", &cookie], "/v1/session");
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["csrf"], session.csrf.as_str());
    assert_eq!(fetch(s, &["-H", &cookie], "/v1/info").status, 200);

    // A mutation with the cookie and no token, or a wrong one: 403, nothing made.
    let refused = post_nacl(s, &session, &[], "no-token");
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json()["code"], "csrf");
    let wrong = post_nacl(
        s,
        &session,
        &["X-CSRF-Token: 0123456789abcdef"],
        "bad-token",
    );
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    assert_eq!(wrong.json()["code"], "csrf");
    let names = nacl_names(s);
    assert!(
        !names.iter().any(|n| n == "no-token" || n == "bad-token"),
        "a refused request changed something: {names:?}"
    );
    // With the token it works.
    let token = format!("X-CSRF-Token: {}", session.csrf);
    let made = post_nacl(s, &session, &[&token], "with-token");
    assert_eq!(made.status, 201, "{}", made.text());
    assert!(nacl_names(s).contains(&"with-token".to_string()));

    // API clients: Basic auth, unchanged, needs no token.
    let (status, body) = s.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &json!({"name": "basic", "content": NACL}).to_string(),
        ],
        "/v1/nacls",
    );
    assert_eq!(status, 201, "{body}");
    // The console's requests get no Basic challenge on 401 (no popup).
    let quiet = fetch(s, &["-H", "X-Requested-With: jetpack"], "/v1/session");
    assert_eq!(quiet.status, 401);
    assert_eq!(quiet.header("www-authenticate"), None);
    let loud = fetch(s, &[], "/v1/instances");
    assert_eq!(loud.status, 401);
    assert!(loud.header("www-authenticate").is_some());

    // Logout ends the session on the server, and clears the cookie.
    let out = fetch(
        s,
        &["-X", "DELETE", "-H", &cookie, "-H", &token],
        "/v1/session",
    );
    assert_eq!(out.status, 204, "{}", out.text());
    let cleared = out.header("set-cookie").unwrap_or("");
    assert!(cleared.starts_with("jetpack_session="), "{cleared:?}");
    assert_eq!(fetch(s, &["-H", &cookie], "/v1/session").status, 401);
    assert_eq!(fetch(s, &["-H", &cookie], "/v1/info").status, 401);
}

#[test]
fn removing_the_user_from_the_htpasswd_file_ends_their_session() {
    if !peers() {
        return;
    }
    let c = console(&[]);
    let s = &c.server;
    let (_, ada) = login(s, USER, PASSWORD);
    let (_, bob) = login(s, OTHER, OTHER_PASSWORD);
    let (ada, bob) = (ada.expect("ada's session"), bob.expect("bob's session"));
    let alive = |who: &Session| fetch(s, &["-H", &who.cookie_header()], "/v1/instances").status;
    assert_eq!((alive(&ada), alive(&bob)), (200, 200));
    // Rewritten without ada (a new file renamed over, as editors do).
    let text = std::fs::read_to_string(&c.users).expect("reading the users file");
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(&format!("{USER}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    let tmp = c.users.with_extension("new");
    std::fs::write(&tmp, kept).expect("writing the new users file");
    std::fs::rename(&tmp, &c.users).expect("replacing the users file");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(&ada) != 401 {
        assert!(
            Instant::now() < deadline,
            "ada's session outlived her removal from the users file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(alive(&bob), 200, "bob's session must survive ada's removal");
    assert_eq!(
        s.curl_as(Some(&format!("{OTHER}:{OTHER_PASSWORD}")), &[], "/v1/info")
            .0,
        200
    );
}

#[test]
fn log_in_fail_log_out_in_the_browser() {
    if !peers() || !browser::available() {
        return;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let c = console(&[]);
    let b = Browser::start("login", &c.server.url(""));
    b.goto("/");
    b.wait_present("[data-testid=login]");
    b.page("login");
    b.fill("[data-testid=login-username]", USER);
    b.fill("[data-testid=login-password]", "not the password");
    b.click("[data-testid=login-submit]");
    b.wait_for("login-error to say why", browser::WAIT, |b| {
        match b.text("[data-testid=login-error]") {
            Some(t) if !t.trim().is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(b.count("[data-testid=logout]"), 0, "a failed login got in");
    b.page("login-error");
    b.fill("[data-testid=login-password]", PASSWORD);
    b.click("[data-testid=login-submit]");
    b.wait_text("[data-testid=user-name]", USER);
    b.wait_text("[data-testid=server-name]", NAME);
    b.wait_present("[data-testid=count-total]");
    b.page("instances-empty");
    // The cookie is not readable by the page (HttpOnly).
    let cookies = b.js("return document.cookie;", vec![]);
    assert!(
        !cookies.as_str().unwrap_or("").contains("jetpack_session"),
        "{cookies}"
    );
    b.click("[data-testid=logout]");
    b.wait_present("[data-testid=login]");
    // Gone on the server too: a reload shows the login again.
    b.goto("/#/instances");
    b.wait_present("[data-testid=login]");
    assert_eq!(b.count("[data-testid=user-name]"), 0);
}
