//! The box of the stage: an SSH server whose session channel records what
//! reaches it as short lines ("env LANG=C", "data hi", "eof"), answers
//! requests as scripted, and says what the test makes it say.

use std::collections::VecDeque;

use russh::server::{self, Auth, ChannelOpenHandle, Session};
use russh::{Channel, ChannelId, Pty, Sig, client};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::stage::{Trusting, WAIT, connect};

/// How the box answers one request that may want a reply (pty, env, shell,
/// exec, subsystem, agent forwarding); unscripted requests succeed. russh
/// answers agent forwarding itself, so `Silent` counts as failure there.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reply {
    Success,
    Failure,
    Silent,
}

/// The box's side of the session channel, for the test to hear and speak.
pub(super) struct BoxSide {
    handle: server::Handle,
    id: ChannelId,
    heard: mpsc::UnboundedReceiver<String>,
    cable: JoinHandle<()>,
    _leg: client::Handle<Trusting>,
}

impl BoxSide {
    /// The next thing that reached the box.
    pub async fn heard(&mut self) -> String {
        tokio::time::timeout(WAIT, self.heard.recv())
            .await
            .expect("something reaches the box")
            .unwrap_or_else(|| "gone".into())
    }

    /// Everything that reached the box so far.
    pub fn heard_so_far(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.heard.try_recv().ok()).collect()
    }

    pub async fn data(&self, text: &str) {
        let _ = self.handle.data(self.id, text.as_bytes().to_vec()).await;
    }

    pub async fn stderr(&self, text: &str) {
        let _ = self
            .handle
            .extended_data(self.id, 1, text.as_bytes().to_vec())
            .await;
    }

    pub async fn eof(&self) {
        let _ = self.handle.eof(self.id).await;
    }

    pub async fn exit(&self, status: u32) {
        let _ = self.handle.exit_status_request(self.id, status).await;
    }

    pub async fn killed_by(&self, signal: Sig) {
        let (dumped, message, lang) = (false, String::new(), String::new());
        let _ = self
            .handle
            .exit_signal_request(self.id, signal, dumped, message, lang)
            .await;
    }

    pub async fn close(&self) {
        let _ = self.handle.close(self.id).await;
    }

    /// The box's connection ends without a word (no close, no exit status).
    pub fn vanish(&self) {
        self.cable.abort();
    }
}

/// Opens a session channel on a fresh box, as the gateway's box leg does.
pub(super) async fn open_box(script: &[Reply]) -> (Channel<client::Msg>, BoxSide) {
    let (heard_tx, heard) = mpsc::unbounded_channel();
    let (opened, mut at_box) = mpsc::unbounded_channel();
    let server = BoxServer {
        script: script.iter().copied().collect(),
        heard: heard_tx,
        opened,
    };
    let (leg, cable) = connect(b"box seed for the session tests", server).await;
    let channel = leg.channel_open_session().await.expect("box session");
    let (handle, id) = at_box.recv().await.expect("the box sees the open");
    let at_box = BoxSide {
        handle,
        id,
        heard,
        cable,
        _leg: leg,
    };
    (channel, at_box)
}

struct BoxServer {
    script: VecDeque<Reply>,
    heard: mpsc::UnboundedSender<String>,
    opened: mpsc::UnboundedSender<(server::Handle, ChannelId)>,
}

impl BoxServer {
    fn hear(&self, line: String) {
        let _ = self.heard.send(line);
    }

    /// Records `line` and answers it as scripted (russh sends the answer
    /// only if the request wanted one).
    fn answer(
        &mut self,
        line: String,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        self.hear(line);
        match self.script.pop_front().unwrap_or(Reply::Success) {
            Reply::Success => session.channel_success(id),
            Reply::Failure => session.channel_failure(id),
            Reply::Silent => Ok(()),
        }
    }
}

impl server::Handler for BoxServer {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<server::Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        // What arrives is recorded by the callbacks below: drop the channel.
        let _ = self.opened.send((session.handle(), channel.id()));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // mirrors the russh callback
    async fn pty_request(
        &mut self,
        id: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer(format!("pty {term} {cols}x{rows}"), id, session)
    }

    async fn env_request(
        &mut self,
        id: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer(format!("env {name}={value}"), id, session)
    }

    async fn shell_request(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer("shell".into(), id, session)
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer(
            format!("exec {}", String::from_utf8_lossy(data)),
            id,
            session,
        )
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer(format!("subsystem {name}"), id, session)
    }

    async fn agent_request(
        &mut self,
        _id: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.hear("agent".into());
        Ok(matches!(
            self.script.pop_front(),
            None | Some(Reply::Success)
        ))
    }

    async fn window_change_request(
        &mut self,
        _id: ChannelId,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.hear(format!("window {cols}x{rows}"));
        Ok(())
    }

    async fn signal(
        &mut self,
        _id: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.hear(format!("signal {signal:?}"));
        Ok(())
    }

    async fn data(
        &mut self,
        _id: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.hear(format!("data {}", String::from_utf8_lossy(data)));
        Ok(())
    }

    async fn extended_data(
        &mut self,
        _id: ChannelId,
        code: u32,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.hear(format!("ext {code} {}", String::from_utf8_lossy(data)));
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        _id: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.hear("eof".into());
        Ok(())
    }

    async fn channel_close(
        &mut self,
        _id: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.hear("close".into());
        Ok(())
    }
}
