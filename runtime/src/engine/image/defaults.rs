//! An image config as the defaults of `rwasm run` (Docker's rules, `docker run`
//! reference "Defaults"): the command is Entrypoint + Cmd, where arguments after the image
//! replace Cmd and `--entrypoint` replaces Entrypoint and drops Cmd (`--entrypoint ""`
//! clears it); the image's Env comes before `-e` (so `-e` wins); WorkingDir and User apply
//! unless `-w`/`-u` are given; ExposedPorts are recorded, not published.

use oci_spec::image::Config;

use crate::engine::docker::RunFlags;

/// The command to run (`None`: the image names none and none was given), with `flags`
/// completed from the image config. `flags.entrypoint` is `--entrypoint`.
pub fn apply(
    config: Option<&Config>,
    args: &[String],
    flags: &mut RunFlags,
) -> Option<Vec<String>> {
    let empty = Config::default();
    let c = config.unwrap_or(&empty);
    let entrypoint: Vec<String> = match &flags.entrypoint {
        Some(e) if e.is_empty() => vec![],
        Some(e) => vec![e.clone()],
        None => c.entrypoint().clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !args.is_empty() {
        args.to_vec()
    } else if flags.entrypoint.is_some() {
        vec![]
    } else {
        c.cmd().clone().unwrap_or_default()
    };
    if let Some(env) = c.env() {
        let mut merged = env.clone();
        merged.append(&mut flags.env);
        flags.env = merged;
    }
    if flags.workdir.is_none() {
        flags.workdir = c.working_dir().clone().filter(|w| !w.is_empty());
    }
    if flags.user.is_none() {
        flags.user = c.user().clone().filter(|u| !u.is_empty());
    }
    let all: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    (!all.is_empty()).then_some(all)
}

/// The image's ExposedPorts, sorted and comma-separated (`53/udp,80/tcp`); `None` if none.
pub fn exposed_ports(config: Option<&Config>) -> Option<String> {
    let mut ports = config?.exposed_ports().clone()?;
    ports.sort();
    (!ports.is_empty()).then(|| ports.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: serde_json::Value) -> Config {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn entrypoint_cmd_env_workdir_and_user_follow_docker() {
        let c = cfg(serde_json::json!({
            "Entrypoint": ["/bin/echo", "ep"], "Cmd": ["default"],
            "Env": ["PATH=/img", "A=image"], "WorkingDir": "/srv", "User": "nobody",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}}
        }));
        let mut f = RunFlags {
            env: vec!["A=flag".into()],
            ..Default::default()
        };
        assert_eq!(
            apply(Some(&c), &[], &mut f).unwrap(),
            ["/bin/echo", "ep", "default"]
        );
        assert_eq!(
            f.env,
            ["PATH=/img", "A=image", "A=flag"],
            "-e comes last and wins"
        );
        assert_eq!(f.workdir.as_deref(), Some("/srv"));
        assert_eq!(f.user.as_deref(), Some("nobody"));
        let mut f = RunFlags::default();
        assert_eq!(
            apply(Some(&c), &["x".into()], &mut f).unwrap(),
            ["/bin/echo", "ep", "x"]
        );
        let mut f = RunFlags {
            entrypoint: Some("/bin/true".into()),
            workdir: Some("/tmp".into()),
            ..Default::default()
        };
        assert_eq!(
            apply(Some(&c), &[], &mut f).unwrap(),
            ["/bin/true"],
            "--entrypoint drops Cmd"
        );
        assert_eq!(f.workdir.as_deref(), Some("/tmp"));
        let mut f = RunFlags {
            entrypoint: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(apply(Some(&c), &[], &mut f), None);
        assert_eq!(exposed_ports(Some(&c)).as_deref(), Some("53/udp,80/tcp"));
    }
}
