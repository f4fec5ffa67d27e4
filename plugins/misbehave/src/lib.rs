//! misbehave: a test plugin that breaks the rules on request, so rwasm's tests can prove
//! that the host's limits and checks hold.
//!
//! Config: `mode` (text, default `ok`) picks what every `invoke` does, `sleep-ms`
//! (integer ≥ 0, default 1000) is the sleep of mode `sleep`, and `size-mib` (integer ≥ 0,
//! default 100) the size of the answer of mode `huge-answer`:
//!
//! | mode | what `invoke` does |
//! |---|---|
//! | `ok` | allows |
//! | `loop` | spins forever (the host's deadline must stop it) |
//! | `alloc` | allocates and touches memory without bound (the memory cap must stop it) |
//! | `panic` | panics (a trap) |
//! | `error` | returns `Err("misbehave: asked to fail")` |
//! | `deny` | denies with `misbehave: denied on purpose` |
//! | `bad-env` | asks for an env variable whose name contains `=` |
//! | `bad-mount` | asks for a bind mount of `/etc` |
//! | `huge` | asks for 100000 env variables |
//! | `sleep` | sleeps `sleep-ms` milliseconds, then allows |
//! | `huge-answer` | asks for one env variable whose value is `size-mib` MiB |
//! | `probe` | reports what its sandbox lets it see, as env variables (below) |
//!
//! `probe` sets `PROBE_ENV` (the `NAME=value` pairs of its environment, `;`-separated),
//! `PROBE_ROOTFS` (the text of `/rootfs/etc/probe.txt`, or `error: ...`),
//! `PROBE_ROOTFS_WRITE` (`ok` or `error: ...` for creating `/rootfs/tmp/probe-write`),
//! `PROBE_CLOCK` (seconds since the epoch) and `PROBE_RANDOM` (a hash seeded from
//! `wasi:random`, different on every instance).

use std::hint::black_box;
use std::time::Duration;

use rwasm_plugin_sdk::prelude::*;

struct Misbehave;

enum Mode {
    Ok,
    Loop,
    Alloc,
    Panic,
    Error,
    Deny,
    BadEnv,
    BadMount,
    Huge,
    Sleep(Duration),
    HugeAnswer(usize),
    Probe,
}

impl Hook for Misbehave {
    fn configure(config: &Config) -> Result<(), Error> {
        Mode::from_config(config)?;
        Ok(())
    }

    fn invoke(_call: &HookCall) -> Result<Verdict, Error> {
        let verdict = match Mode::from_config(&Config::current())? {
            Mode::Ok => Verdict::allow(),
            Mode::Loop => spin(),
            Mode::Alloc => hoard(),
            Mode::Panic => panic!("misbehave: panicking on purpose"),
            Mode::Error => return Err("misbehave: asked to fail".into()),
            Mode::Deny => Verdict::deny("misbehave: denied on purpose"),
            Mode::BadEnv => Adjustment::default().env("MISBEHAVE=BAD", "1").into(),
            Mode::BadMount => Adjustment::default()
                .mount(Mount::bind("/etc", "/mnt/etc"))
                .into(),
            Mode::Huge => (0..100_000)
                .fold(Adjustment::default(), |adj, i| {
                    adj.env(format!("MISBEHAVE_{i}"), "x")
                })
                .into(),
            Mode::Sleep(pause) => {
                std::thread::sleep(pause);
                Verdict::allow()
            }
            Mode::HugeAnswer(bytes) => Adjustment::default()
                .env("MISBEHAVE_HUGE", "x".repeat(bytes))
                .into(),
            Mode::Probe => probe().into(),
        };
        Ok(verdict)
    }
}

rwasm_plugin_sdk::export_hook!(Misbehave);

impl Mode {
    fn from_config(config: &Config) -> Result<Self, ConfigError> {
        config.deny_unknown(&["mode", "sleep-ms", "size-mib"])?;
        let sleep_ms = config.get_int("sleep-ms")?.unwrap_or(1000);
        let sleep_ms = u64::try_from(sleep_ms)
            .map_err(|_| ConfigError::invalid("sleep-ms", "must not be negative"))?;
        let size_mib = config.get_int("size-mib")?.unwrap_or(100);
        let size = usize::try_from(size_mib)
            .ok()
            .and_then(|mib| mib.checked_mul(1 << 20))
            .ok_or_else(|| ConfigError::invalid("size-mib", "must be 0 to 4095"))?;
        Ok(match config.get_str("mode")?.unwrap_or("ok") {
            "ok" => Mode::Ok,
            "loop" => Mode::Loop,
            "alloc" => Mode::Alloc,
            "panic" => Mode::Panic,
            "error" => Mode::Error,
            "deny" => Mode::Deny,
            "bad-env" => Mode::BadEnv,
            "bad-mount" => Mode::BadMount,
            "huge" => Mode::Huge,
            "sleep" => Mode::Sleep(Duration::from_millis(sleep_ms)),
            "huge-answer" => Mode::HugeAnswer(size),
            "probe" => Mode::Probe,
            other => {
                return Err(ConfigError::invalid(
                    "mode",
                    format!(
                        "unknown mode {other:?}; known modes: ok, loop, alloc, panic, error, \
                         deny, bad-env, bad-mount, huge, sleep, huge-answer, probe"
                    ),
                ));
            }
        })
    }
}

/// What the sandbox lets this instance see, as env variables (see the module docs).
fn probe() -> Adjustment {
    use std::hash::{BuildHasher, Hasher};
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let rootfs = std::fs::read_to_string("/rootfs/etc/probe.txt")
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|e| format!("error: {e}"));
    let write = std::fs::write("/rootfs/tmp/probe-write", b"written by misbehave\n")
        .map(|()| "ok".to_string())
        .unwrap_or_else(|e| format!("error: {e}"));
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(clock);
    Adjustment::default()
        .env("PROBE_ENV", env.join(";"))
        .env("PROBE_ROOTFS", rootfs)
        .env("PROBE_ROOTFS_WRITE", write)
        .env("PROBE_CLOCK", clock.to_string())
        .env("PROBE_RANDOM", format!("{:016x}", hasher.finish()))
}

/// Runs forever; `black_box` keeps the optimizer from proving the loop does nothing.
fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Allocates 1 MiB blocks, writing every byte, and keeps them all until memory runs out.
fn hoard() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![0xa5; 1 << 20]);
        black_box(&mut blocks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(entries: &[(&str, ConfigValue)]) -> Result<Mode, ConfigError> {
        Mode::from_config(
            &entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn parses_modes() {
        assert!(matches!(mode(&[]), Ok(Mode::Ok)));
        assert!(matches!(
            mode(&[("mode", ConfigValue::Text("bad-mount".into()))]),
            Ok(Mode::BadMount)
        ));
        let sleep = [
            ("mode", ConfigValue::Text("sleep".into())),
            ("sleep-ms", ConfigValue::Integer(20)),
        ];
        assert!(matches!(mode(&sleep), Ok(Mode::Sleep(d)) if d == Duration::from_millis(20)));
    }

    #[test]
    fn refuses_unknown_modes_and_keys() {
        let err = mode(&[("mode", ConfigValue::Text("explode".into()))])
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with(r#"config key "mode": unknown mode "explode""#),
            "{err}"
        );
        assert!(mode(&[("speed", ConfigValue::Integer(1))]).is_err());
        assert!(mode(&[("sleep-ms", ConfigValue::Integer(-1))]).is_err());
    }
}
