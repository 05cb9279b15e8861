//! The exam desktops' network rules, applied for real: three network
//! namespaces made by the test — a desktop, the host that forwards its
//! traffic (where the rules go, as on a Docker host) and a peer listening
//! on two addresses — joined by veth pairs that never leave the machine.
//! With the rules of a policy that allows one of the peer's addresses,
//! that one is reachable from the desktop and the other is not; without
//! them both are.
//!
//! Needs root, `ip` and `nft`: otherwise a skip line, or a failure under
//! `VDI_REQUIRE_BACKENDS=1` (CI runs as root with nftables installed).

use std::fs::File;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use vdi_cluster_core::network::{NetworkPolicy, parse_cidr};
use vdi_cluster_core::testkit::backend_unreachable;
use vdi_cluster_node::network_policy::{Ruleset, removal};

/// Longest wait for a connection that should succeed (a loopback veth
/// answers in microseconds; this only bounds a broken run).
const REACHABLE_WITHIN: Duration = Duration::from_secs(20);
/// How long a connection that should be dropped is given before it
/// counts as refused. A dropped SYN never answers, so this only decides
/// how long the test waits; a connection that succeeds fails it at once.
const DROPPED_AFTER: Duration = Duration::from_secs(2);

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Three namespaces, deleted (with their veths) on drop.
struct Lab {
    desk: String,
    host: String,
    peer: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.desk, &self.host, &self.peer] {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

impl Lab {
    /// desk 10.201.1.2 —(via 10.201.1.1, host, 10.201.2.1)— peer 10.201.2.2 and .3
    fn new() -> Result<Self, String> {
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let lab = Self {
            desk: format!("vdi-np-{tag}-desk"),
            host: format!("vdi-np-{tag}-host"),
            peer: format!("vdi-np-{tag}-peer"),
        };
        for ns in [&lab.desk, &lab.host, &lab.peer] {
            run(&["ip", "netns", "add", ns])?;
        }
        let (desk, host, peer) = (lab.desk.as_str(), lab.host.as_str(), lab.peer.as_str());
        let steps: &[&[&str]] = &[
            &[
                "ip", "-n", desk, "link", "add", "eth0", "type", "veth", "peer", "name", "d0",
                "netns", host,
            ],
            &[
                "ip", "-n", peer, "link", "add", "eth0", "type", "veth", "peer", "name", "p0",
                "netns", host,
            ],
            &[
                "ip",
                "-n",
                desk,
                "addr",
                "add",
                "10.201.1.2/24",
                "dev",
                "eth0",
            ],
            &[
                "ip",
                "-n",
                host,
                "addr",
                "add",
                "10.201.1.1/24",
                "dev",
                "d0",
            ],
            &[
                "ip",
                "-n",
                host,
                "addr",
                "add",
                "10.201.2.1/24",
                "dev",
                "p0",
            ],
            &[
                "ip",
                "-n",
                peer,
                "addr",
                "add",
                "10.201.2.2/24",
                "dev",
                "eth0",
            ],
            &[
                "ip",
                "-n",
                peer,
                "addr",
                "add",
                "10.201.2.3/24",
                "dev",
                "eth0",
            ],
            &["ip", "-n", desk, "link", "set", "eth0", "up"],
            &["ip", "-n", peer, "link", "set", "eth0", "up"],
            &["ip", "-n", host, "link", "set", "d0", "up"],
            &["ip", "-n", host, "link", "set", "p0", "up"],
            &["ip", "-n", desk, "link", "set", "lo", "up"],
            &["ip", "-n", peer, "link", "set", "lo", "up"],
            &[
                "ip",
                "-n",
                desk,
                "route",
                "add",
                "default",
                "via",
                "10.201.1.1",
            ],
            &[
                "ip",
                "-n",
                peer,
                "route",
                "add",
                "default",
                "via",
                "10.201.2.1",
            ],
            &[
                "ip",
                "netns",
                "exec",
                host,
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
            ],
        ];
        for step in steps {
            run(step)?;
        }
        Ok(lab)
    }

    /// Runs `f` on a thread moved into namespace `ns` (sockets it opens
    /// stay there).
    fn inside<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = File::open(&path).expect("the namespace exists");
            move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                .expect("setns into the test's namespace");
            f()
        })
        .join()
        .expect("the thread in the namespace")
    }

    fn listen(&self, ip: &str) -> TcpListener {
        let addr: SocketAddr = format!("{ip}:0").parse().unwrap();
        Self::inside(&self.peer, move || {
            TcpListener::bind(addr).expect("listen in the peer")
        })
    }

    fn connect(&self, to: SocketAddr, within: Duration) -> std::io::Result<()> {
        Self::inside(&self.desk, move || {
            TcpStream::connect_timeout(&to, within).map(drop)
        })
    }

    fn nft(&self, script: &str) -> Result<(), String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.host, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

fn lab_or_skip() -> Option<Lab> {
    let why = if !rustix::process::geteuid().is_root() {
        "not root".to_owned()
    } else if let Err(e) = run(&["nft", "--version"]) {
        format!("no nft ({e})")
    } else {
        match Lab::new() {
            Ok(lab) => return Some(lab),
            Err(e) => e,
        }
    };
    backend_unreachable("network namespaces with nftables", "ip netns", &why)
}

#[test]
fn an_allowed_address_is_reachable_and_another_is_not() {
    let Some(lab) = lab_or_skip() else { return };
    let allowed = lab.listen("10.201.2.2");
    let other = lab.listen("10.201.2.3");
    let (allowed, other) = (allowed.local_addr().unwrap(), other.local_addr().unwrap());
    lab.connect(allowed, REACHABLE_WITHIN)
        .expect("reachable without rules");
    lab.connect(other, REACHABLE_WITHIN)
        .expect("reachable without rules");

    let desktop: IpAddr = "10.201.1.2".parse().unwrap();
    let policy = NetworkPolicy {
        allowed_ips: vec!["10.201.2.2".parse().unwrap()],
        allowed_cidrs: vec![parse_cidr("test", "10.201.3.0/24").unwrap()],
        ..NetworkPolicy::restricted()
    };
    let rules = Ruleset::new(&policy, desktop, &[], &[]).unwrap();
    lab.nft(&rules.render()).expect("the rules apply");
    // Applying again replaces the table: the same rules, once.
    lab.nft(&rules.render()).expect("the rules apply again");

    lab.connect(allowed, REACHABLE_WITHIN)
        .expect("the allowed address stays reachable");
    let refused = lab.connect(other, DROPPED_AFTER);
    assert!(refused.is_err(), "10.201.2.3 is not allowed, yet reachable");

    lab.nft(&removal(desktop)).expect("the rules are removed");
    lab.connect(other, REACHABLE_WITHIN)
        .expect("reachable again once the rules are removed");
}
