//! How `rwasm pull` reaches a registry and what it shows meanwhile, against a real
//! `docker-registry` (`registry_common`): plain HTTP for a registry listed as insecure
//! (`--insecure-registry`, `registries.toml`) and HTTPS otherwise; credentials from an
//! auth file for htpasswd basic auth and for distribution's token authentication, with a
//! token server of the test's own that signs real JWTs for the registry (basic
//! credentials exchanged for a token, a `registrytoken` sent as it is); a progress bar
//! per layer on a terminal. Root only (they fail, never skip, otherwise).

mod common;
mod images_common;
mod registry_common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::*;
use images_common::*;
use registry_common::*;
use serde_json::json;

#[test]
fn a_registry_listed_as_insecure_is_reached_over_plain_http() {
    let w = World::new();
    // Not localhost nor 127.0.0.1: still loopback, but not insecure unless listed.
    let reg = Registry::launch(w.path("registry"), "127.0.0.2", "");
    let img = app(&w, "over plain http\n", GZ);
    let lay = layout(&w.path("layout"), &[&img], None, "v1");
    reg.push(&lay, "v1", "ins:v1", &[]);
    let host = reg.host();
    let r = format!("{host}/ins:v1");

    // Unlisted: HTTPS, which this plain-HTTP registry cannot speak.
    let out = pull(&w, &r, &[]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains(&format!("{r}: registry {host}")) && !e.contains("plain HTTP"),
        "{e}"
    );
    assert_eq!(reg.blob_gets(&img.layer_digest(1)).len(), 0);

    // --insecure-registry HOST:PORT.
    let out = w
        .cmd(&["pull", "--insecure-registry", &host, &r])
        .env("HOME", w.path("home"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        ok(&w, &["run", "--rm", &r, "cat", "/file"]),
        "over plain http\n"
    );

    // registries.toml in the data root, into a second store; another port of the same
    // host is not listed by it.
    let w2 = World::new();
    std::fs::create_dir_all(&w2.data).unwrap();
    std::fs::write(
        w2.data.join("registries.toml"),
        format!("insecure-registries = [\"127.0.0.2:1\", \"{host}\"]\n"),
    )
    .unwrap();
    pull_ok(&w2, &r);
    assert_eq!(
        ok(&w2, &["run", "--rm", &r, "cat", "/file"]),
        "over plain http\n"
    );
    std::fs::write(
        w2.data.join("registries.toml"),
        "insecure-registries = [\"127.0.0.2:1\"]\n",
    )
    .unwrap();
    let e = stderr(&pull(&w2, &r, &[]));
    assert!(
        e.contains(&format!("{r}: registry {host}")) && !e.contains("plain HTTP"),
        "{e}"
    );
    std::fs::write(w2.data.join("registries.toml"), "insecure = []\n").unwrap();
    let e = stderr(&pull(&w2, &r, &[]));
    assert!(e.contains("malformed registries file"), "{e}");

    // `localhost` by name is plain HTTP without any listing, as in Docker.
    let local = Registry::start(&w, None);
    let lay = layout(&w.path("layout-local"), &[&img], None, "v1");
    local.push(&lay, "v1", "loc:v1", &[]);
    let by_name = format!(
        "localhost:{}/loc:v1",
        local.host().rsplit(':').next().unwrap()
    );
    let w3 = World::new();
    let out = pull_ok(&w3, &by_name);
    assert!(out.ends_with(&format!("{by_name}\n")), "{out}");
    assert_eq!(
        ok(&w3, &["run", "--rm", &by_name, "cat", "/file"]),
        "over plain http\n"
    );
}

/// base64 (standard alphabet), as an auth file's `auth` and basic auth spell it.
fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// An auth file giving alice's wrong password for `reg`: the pull of `r` with it is
/// denied, naming the user and the file. Returns the file.
fn wrong_password_denied(w: &World, reg: &Registry, r: &str) -> std::path::PathBuf {
    let auth = w.path("auth.json");
    std::fs::write(
        &auth,
        json!({"auths": {reg.host(): {"auth": b64("alice:wrong")}}}).to_string(),
    )
    .unwrap();
    let env = [("REGISTRY_AUTH_FILE", auth.to_str().unwrap())];
    pull_denied(
        w,
        r,
        &env,
        &format!("user \"alice\" from {}", auth.display()),
    );
    auth
}

#[test]
fn basic_auth_credentials_come_from_the_auth_file() {
    let w = World::new();
    let reg = Registry::start(&w, Some(("alice", "s3cret")));
    let (_, r) = push_private(&w, &reg, "behind a password\n");
    let none = format!("no credentials for {} in no auth file", reg.host());
    pull_denied(&w, &r, &[], &none);
    wrong_password_denied(&w, &reg, &r);
    // Docker's own file, keyed with a scheme as `docker login` may write it.
    std::fs::create_dir_all(w.path("home/.docker")).unwrap();
    std::fs::write(
        w.path("home/.docker/config.json"),
        json!({"auths": {format!("https://{}", reg.host()): {"auth": b64("alice:s3cret")}}})
            .to_string(),
    )
    .unwrap();
    pull_ok(&w, &r);
    assert_eq!(
        ok(&w, &["run", "--rm", &r, "cat", "/file"]),
        "behind a password\n"
    );
}

/// base64url without padding (RFC 7515's encoding of JWS parts).
fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `openssl ARGS`, its stdout.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (apt openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    out.stdout
}

/// A token server (distribution's "Token Authentication Specification") on 127.0.0.1:
/// it answers `GET /token` with one JWT, signed RS256 by a key whose self-signed
/// certificate the registry trusts, granting pull and push of `repo`, to a client that
/// sends basic auth of `user`; anyone else gets 401. It records each request's
/// `Authorization` header.
struct TokenServer {
    port: u16,
    token: String,
    cert: std::path::PathBuf,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

const ISSUER: &str = "rwasm-test-issuer";
const SERVICE: &str = "rwasm-test-registry";

impl TokenServer {
    fn start(w: &World, repo: &str, user: (&str, &str)) -> TokenServer {
        let dir = w.path("token");
        std::fs::create_dir_all(&dir).unwrap();
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        let (key_s, cert_s) = (key.to_str().unwrap(), cert.to_str().unwrap());
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=rwasm test token issuer",
            "-keyout",
            key_s,
            "-out",
            cert_s,
        ]);
        let der = openssl(&["x509", "-in", cert_s, "-outform", "DER"]);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({"typ": "JWT", "alg": "RS256",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)]});
        let claims = json!({"iss": ISSUER, "sub": user.0, "aud": SERVICE,
            "exp": now + 3600, "nbf": now - 60, "iat": now - 60, "jti": rand_suffix(),
            "access": [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]});
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let input = dir.join("input");
        std::fs::write(&input, &signing_input).unwrap();
        let sig = openssl(&["dgst", "-sha256", "-sign", key_s, input.to_str().unwrap()]);
        let token = format!("{signing_input}.{}", b64url(&sig));

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let want = format!("Basic {}", b64(&format!("{}:{}", user.0, user.1)));
        let (t, s) = (token.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(c) = conn else { continue };
                serve_token(c, &want, &t, &s);
            }
        });
        TokenServer {
            port,
            token,
            cert,
            seen,
        }
    }

    /// The registry config's `auth:` section that sends clients here.
    fn registry_auth(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.port,
            self.cert.display()
        )
    }

    /// The `Authorization` headers of the token requests so far, and forget them.
    fn take(&self) -> Vec<Option<String>> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// One HTTP/1.1 exchange of the token server.
fn serve_token(mut c: TcpStream, want: &str, token: &str, seen: &Mutex<Vec<Option<String>>>) {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req).into_owned();
    let auth = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("authorization")
            .then(|| v.trim().to_string())
    });
    let granted = auth.as_deref() == Some(want);
    seen.lock().unwrap().push(auth);
    let (status, body) = if granted {
        (
            "200 OK",
            json!({"token": token, "access_token": token, "expires_in": 3600}).to_string(),
        )
    } else {
        (
            "401 Unauthorized",
            json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
                .to_string(),
        )
    };
    let _ = write!(
        c,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn a_token_registry_gets_a_token_for_the_auth_files_credentials() {
    let w = World::new();
    let tokens = TokenServer::start(&w, "private", ("alice", "s3cret"));
    let reg = Registry::launch(w.path("registry"), "127.0.0.1", &tokens.registry_auth());
    let (img, r) = push_private(&w, &reg, "behind a token\n");
    tokens.take();

    // No credentials: the token server refuses, and the pull says why.
    let none = format!("no credentials for {} in no auth file", reg.host());
    pull_denied(&w, &r, &[], &none);
    assert_eq!(tokens.take(), vec![None], "one anonymous token request");

    // Wrong password: refused at the token server.
    let auth = wrong_password_denied(&w, &reg, &r);
    let env = [("REGISTRY_AUTH_FILE", auth.to_str().unwrap())];
    assert_eq!(
        tokens.take(),
        vec![Some(format!("Basic {}", b64("alice:wrong")))]
    );

    // The right user and password: exchanged for a token, with which the registry
    // serves the image.
    std::fs::write(
        &auth,
        json!({"auths": {reg.host(): {"username": "alice", "password": "s3cret"}}}).to_string(),
    )
    .unwrap();
    let out = pull(&w, &r, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let asked = tokens.take();
    assert!(!asked.is_empty(), "the token server was asked");
    assert!(
        asked
            .iter()
            .all(|a| a.as_deref() == Some(format!("Basic {}", b64("alice:s3cret")).as_str())),
        "{asked:?}"
    );
    assert_eq!(
        ok(&w, &["run", "--rm", &r, "cat", "/file"]),
        "behind a token\n"
    );
    assert_eq!(reg.blob_gets(&img.layer_digest(1)).len(), 1);

    // A `registrytoken` is sent to the registry as it is: no token request.
    let w2 = World::new();
    let auth2 = w2.path("auth.json");
    std::fs::write(
        &auth2,
        json!({"auths": {reg.host(): {"registrytoken": tokens.token}}}).to_string(),
    )
    .unwrap();
    // Named by --authfile, which wins over $REGISTRY_AUTH_FILE.
    let out = w2
        .cmd(&["pull", "--authfile", auth2.to_str().unwrap(), &r])
        .env("HOME", w2.path("home"))
        .env("REGISTRY_AUTH_FILE", auth.to_str().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tokens.take(), Vec::<Option<String>>::new());
    assert_eq!(
        ok(&w2, &["run", "--rm", &r, "cat", "/file"]),
        "behind a token\n"
    );
    // A token the registry does not accept is refused by it, named as the token.
    std::fs::write(
        &auth2,
        json!({"auths": {reg.host(): {"registrytoken": "not.a.jwt"}}}).to_string(),
    )
    .unwrap();
    let w3 = World::new();
    let env = [("REGISTRY_AUTH_FILE", auth2.to_str().unwrap())];
    pull_denied(&w3, &r, &env, &format!("token from {}", auth2.display()));
}

#[test]
fn a_terminal_gets_a_progress_bar_per_layer_and_a_pipe_plain_lines() {
    let w = World::new();
    let reg = Registry::start(&w, None);
    // A layer big enough that its download is seen in progress.
    let img = Img::new(
        &[
            (GZ, busybox_layer(&w.path("bb"))),
            (TAR, layer(&[E::File("big", &noise(128 << 20, 11))])),
        ],
        "amd64",
    );
    let lay = layout(&w.path("layout"), &[&img], None, "v1");
    reg.push(&lay, "v1", "bars:v1", &["--preserve-digests"]);
    let r = format!("{}/bars:v1", reg.host());

    let pty = nix::pty::openpty(None, None).unwrap();
    set_winsize(&pty.master, 30, 160);
    let mut c = w.cmd(&["pull", &r]);
    c.env("HOME", w.path("home"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave))
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    // Only the child holds the terminal now: reading the master ends when it exits.
    drop(c);
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = reader.join().unwrap();
    assert!(
        shown.contains('\x1b'),
        "bars are redrawn in place: {shown:?}"
    );
    for i in 0..2 {
        let id = &img.layer_digest(i)[7..19];
        assert!(
            shown.contains(&format!("{id}: Pull complete")),
            "layer {id}: {shown:?}"
        );
    }
    let big = &img.layer_digest(1)[7..19];
    assert!(
        shown.contains(&format!("{big}: Downloading [")) && shown.contains(" MiB/128.00 MiB"),
        "the big layer's bar with its bytes: {shown:?}"
    );
    assert!(
        shown.contains(&format!("Status: Downloaded newer image for {r}")),
        "{shown:?}"
    );

    // A pipe gets Docker's plain lines, no escape sequence and no byte counts.
    let w2 = World::new();
    let plain = pull_ok(&w2, &r);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(!plain.contains("MiB"), "{plain:?}");
    assert!(
        plain.contains(&format!("{big}: Pulling fs layer\n")),
        "{plain}"
    );
    assert!(
        plain.contains(&format!("{big}: Pull complete\n")),
        "{plain}"
    );
}
