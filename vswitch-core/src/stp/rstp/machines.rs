//! The clause-17 state machines of [`Rstp`], one step function per machine and port: each
//! takes at most one transition and says whether it did, and [`Rstp::run`] repeats them until
//! none does.

use super::{
    ms, role_flags, Info, Migration, Msg, Port, PriorityVector, Rstp, TcState, Times, MAC_MASK,
    MIGRATE_MS, SECOND, TX_HOLD_COUNT,
};
use crate::stp::{
    Bpdu, ConfigBpdu, PortRole, RstRole, FLAG_AGREEMENT, FLAG_FORWARDING, FLAG_LEARNING,
    FLAG_PROPOSAL, FLAG_TC, FLAG_TCA,
};

impl Rstp {
    // ---- Port Role Selection (17.28) ----

    pub(super) fn role_selection(&mut self) -> bool {
        if !self.ports.iter().flatten().any(|p| p.reselect) {
            return false;
        }
        for p in self.ports.iter_mut().flatten() {
            p.reselect = false;
        }
        self.update_roles();
        for p in self.ports.iter_mut().flatten() {
            p.selected = true;
        }
        true
    }

    /// updtRolesTree (17.21.25).
    fn update_roles(&mut self) {
        let id = self.id;
        let own = PriorityVector {
            root: id,
            cost: 0,
            bridge: id,
            port: 0,
        };
        let mut best = (own, 0u16);
        let mut root_port = None;
        for (i, p) in self.ports.iter().enumerate() {
            let Some(p) = p.as_ref().filter(|p| p.info == Info::Received) else {
                continue;
            };
            if p.port_prio.bridge.0 & MAC_MASK == id.0 & MAC_MASK {
                continue;
            }
            let v = PriorityVector {
                cost: p.port_prio.cost.saturating_add(p.cfg.path_cost),
                ..p.port_prio
            };
            if (v, p.id) < best {
                best = (v, p.id);
                root_port = Some(i);
            }
        }
        self.root_prio = best.0;
        self.root_port = root_port;
        self.root_times = match root_port.and_then(|r| self.port(r)) {
            Some(r) => {
                let age = (u32::from(r.port_times.age) + SECOND + SECOND / 2) / SECOND * SECOND;
                Times {
                    age: age.min(0xffff) as u16,
                    ..r.port_times
                }
            }
            None => self.times,
        };
        let (root, cost, hello) = (self.root_prio.root, self.root_prio.cost, self.times.hello);
        let times = Times {
            hello,
            ..self.root_times
        };
        for (i, p) in self.ports.iter_mut().enumerate() {
            let Some(p) = p.as_mut() else { continue };
            p.designated_prio = PriorityVector {
                root,
                cost,
                bridge: id,
                port: p.id,
            };
            p.designated_times = times;
            p.selected_role = match p.info {
                Info::Disabled => PortRole::Disabled,
                Info::Aged => {
                    p.updt_info = true;
                    PortRole::Designated
                }
                Info::Mine => {
                    if p.port_prio != p.designated_prio || p.port_times != p.designated_times {
                        p.updt_info = true;
                    }
                    PortRole::Designated
                }
                Info::Received if root_port == Some(i) => {
                    p.updt_info = false;
                    PortRole::Root
                }
                Info::Received if p.designated_prio >= p.port_prio => {
                    p.updt_info = false;
                    if p.port_prio.bridge.0 & MAC_MASK == id.0 & MAC_MASK {
                        PortRole::Backup
                    } else {
                        PortRole::Alternate
                    }
                }
                Info::Received => {
                    p.updt_info = true;
                    PortRole::Designated
                }
            };
        }
    }

    // ---- Port Protocol Migration (17.24) and Bridge Detection (17.25) ----

    pub(super) fn migration(&mut self, i: usize, now: u64) -> bool {
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return false;
        };
        let to_sensing = |p: &mut Port| {
            p.migration = Migration::Sensing;
            p.rcvd_rstp = false;
            p.rcvd_stp = false;
            true
        };
        match p.migration {
            Migration::CheckingRstp => {
                if !p.enabled() {
                    p.mdelay_while = now + MIGRATE_MS;
                    false
                } else if p.mdelay_while <= now {
                    to_sensing(p)
                } else {
                    false
                }
            }
            Migration::SelectingStp => {
                if p.mdelay_while <= now || !p.enabled() || p.mcheck {
                    to_sensing(p)
                } else {
                    false
                }
            }
            Migration::Sensing => {
                if !p.enabled() || p.mcheck || (!p.send_rstp && p.rcvd_rstp) {
                    p.migration = Migration::CheckingRstp;
                    p.mcheck = false;
                    p.send_rstp = true;
                    p.mdelay_while = now + MIGRATE_MS;
                    true
                } else if p.send_rstp && p.rcvd_stp {
                    p.migration = Migration::SelectingStp;
                    p.send_rstp = false;
                    p.mdelay_while = now + MIGRATE_MS;
                    true
                } else {
                    false
                }
            }
        }
    }

    pub(super) fn bridge_detection(&mut self, i: usize, now: u64) -> bool {
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return false;
        };
        if p.oper_edge {
            if !p.enabled() && !p.cfg.admin_edge {
                p.oper_edge = false;
                return true;
            }
        } else if (!p.enabled() && p.cfg.admin_edge)
            || (p.edge_delay_while <= now && p.cfg.auto_edge && p.send_rstp && p.proposing)
        {
            p.oper_edge = true;
            return true;
        }
        false
    }

    // ---- Port Information (17.27) ----

    pub(super) fn information(&mut self, i: usize, now: u64) -> bool {
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return false;
        };
        if !p.enabled() && p.info != Info::Disabled {
            p.msg = None;
            p.proposing = false;
            p.proposed = false;
            p.agree = false;
            p.agreed = false;
            p.rcvd_info_while = 0;
            p.info = Info::Disabled;
            p.reselect = true;
            p.selected = false;
            return true;
        }
        match p.info {
            Info::Disabled => {
                if p.msg.take().is_some() {
                    true
                } else if p.enabled() {
                    p.info = Info::Aged;
                    p.reselect = true;
                    p.selected = false;
                    true
                } else {
                    false
                }
            }
            _ if p.selected && p.updt_info => {
                // UPDATE
                let mine_better = p.info == Info::Mine && p.designated_prio <= p.port_prio;
                p.proposing = false;
                p.proposed = false;
                p.agreed = p.agreed && mine_better;
                p.synced = p.synced && p.agreed;
                p.port_prio = p.designated_prio;
                p.port_times = p.designated_times;
                p.updt_info = false;
                p.info = Info::Mine;
                p.new_info = true;
                true
            }
            Info::Aged => false,
            Info::Received if p.rcvd_info_while <= now && !p.updt_info && p.msg.is_none() => {
                p.info = Info::Aged;
                p.reselect = true;
                p.selected = false;
                true
            }
            _ => match p.msg.take() {
                Some(m) if !p.updt_info => {
                    Self::receive_msg(p, &m, now);
                    true
                }
                m => {
                    p.msg = m;
                    false
                }
            },
        }
    }

    /// RECEIVE: rcvInfo (17.21.8) and the state it selects.
    fn receive_msg(p: &mut Port, m: &Msg, now: u64) {
        let record_tc = |p: &mut Port| {
            p.rcvd_tc |= m.flags & FLAG_TC != 0;
            p.rcvd_tc_ack |= m.flags & FLAG_TCA != 0;
        };
        let record_proposal = |p: &mut Port| {
            if m.flags & FLAG_PROPOSAL != 0 {
                p.proposed = true;
            }
        };
        let designated = matches!(m.role, RstRole::Designated | RstRole::Unknown);
        // Compared as recorded, or a message whose times were adjusted would never repeat.
        let times = m.times.recorded();
        if designated && m.prio == p.port_prio && times == p.port_times {
            // REPEATED_DESIGNATED
            record_proposal(p);
            record_tc(p);
            Self::update_rcvd_info_while(p, now);
        } else if designated && (m.prio == p.port_prio || m.prio.supersedes(&p.port_prio)) {
            // SUPERIOR_DESIGNATED
            let better_or_same = p.info == Info::Received && m.prio <= p.port_prio;
            p.agreed = false;
            p.proposing = false;
            record_proposal(p);
            record_tc(p);
            p.agree = p.agree && better_or_same;
            p.port_prio = m.prio;
            p.port_times = times;
            Self::update_rcvd_info_while(p, now);
            p.info = Info::Received;
            p.reselect = true;
            p.selected = false;
        } else if designated {
            // INFERIOR_DESIGNATED: recordDispute
            if m.rst && m.flags & FLAG_LEARNING != 0 {
                p.disputed = true;
                p.agreed = false;
            }
        } else if m.prio >= p.port_prio {
            // NOT_DESIGNATED: recordAgreement, setTcFlags
            if m.rst && p.p2p() && m.flags & FLAG_AGREEMENT != 0 {
                p.agreed = true;
                p.proposing = false;
            } else {
                p.agreed = false;
            }
            record_tc(p);
        }
    }

    /// updtRcvdInfoWhile (17.21.23): three hellos, or none if the message is too old.
    fn update_rcvd_info_while(p: &mut Port, now: u64) {
        let t = p.port_times;
        p.rcvd_info_while = if u32::from(t.age) + SECOND <= u32::from(t.max_age) {
            now + 3 * ms(t.hello)
        } else {
            0
        };
    }

    // ---- Port Role Transitions (17.29) ----

    fn all_synced(&self) -> bool {
        self.ports.iter().flatten().all(|p| {
            p.selected
                && p.role == p.selected_role
                && !p.updt_info
                && (p.synced || p.role == PortRole::Root)
        })
    }

    fn re_rooted(&self, i: usize, now: u64) -> bool {
        self.ports
            .iter()
            .enumerate()
            .all(|(j, p)| j == i || p.as_ref().is_none_or(|p| p.rr_while <= now))
    }

    fn set_tree(&mut self, f: fn(&mut Port)) {
        for p in self.ports.iter_mut().flatten() {
            f(p);
        }
    }

    /// ROOT_PROPOSED / ALTERNATE_PROPOSED, then ROOT_AGREED / ALTERNATE_AGREED: a proposal
    /// first syncs the tree (`Some(true)`: the caller runs setSyncTree), and is agreed to
    /// once every other port is synced.
    fn answer_proposal(p: &mut Port, all_synced: bool) -> Option<bool> {
        if p.proposed && !p.agree {
            p.proposed = false;
            return Some(true);
        }
        if (all_synced && !p.agree) || (p.proposed && p.agree) {
            p.proposed = false;
            p.agree = true;
            p.new_info = true;
            if p.role == PortRole::Root {
                p.sync = false;
            }
            return Some(false);
        }
        None
    }

    /// DISABLED_PORT / ALTERNATE_PORT: a discarding port counts as synced and ends any
    /// sync or re-root request.
    fn settle_discarding(p: &mut Port) -> bool {
        if !(p.sync || p.re_root || !p.synced) {
            return false;
        }
        p.synced = true;
        p.rr_while = 0;
        p.sync = false;
        p.re_root = false;
        true
    }

    pub(super) fn role_transitions(&mut self, i: usize, now: u64) -> bool {
        // allSynced and reRooted look at every port: evaluate them only for the roles that
        // read them (root, alternate, backup), so that a pass over a bridge of designated
        // ports stays linear in its ports, not quadratic (2,048 ports took 15 ms per BPDU).
        let reads = match self.ports.get(i) {
            Some(Some(p)) if p.selected && !p.updt_info && p.role == p.selected_role => p.role,
            _ => PortRole::Disabled,
        };
        let all_synced = matches!(
            reads,
            PortRole::Root | PortRole::Alternate | PortRole::Backup
        ) && self.all_synced();
        let re_rooted = reads == PortRole::Root && self.re_rooted(i, now);
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return false;
        };
        if !p.selected || p.updt_info {
            return false;
        }
        if p.role != p.selected_role {
            p.role = p.selected_role;
            match p.role {
                PortRole::Root => p.rr_while = now + ms(p.designated_times.fwd),
                PortRole::Designated => {}
                _ => {
                    p.learn = false;
                    p.forward = false;
                }
            }
            return true;
        }
        match p.role {
            PortRole::Disabled => {
                if p.learning || p.forwarding {
                    return false;
                }
                p.fd_while = now + ms(p.designated_times.max_age);
                Self::settle_discarding(p)
            }
            PortRole::Alternate | PortRole::Backup => {
                if p.learning || p.forwarding {
                    return false;
                }
                if p.role == PortRole::Backup {
                    p.rb_while = now + 2 * p.hello_ms();
                }
                if let Some(sync_tree) = Self::answer_proposal(p, all_synced) {
                    if sync_tree {
                        self.set_tree(|q| q.sync = true);
                    }
                    return true;
                }
                p.fd_while = now + p.forward_delay();
                Self::settle_discarding(p)
            }
            PortRole::Root => {
                p.rr_while = now + ms(p.designated_times.fwd);
                if let Some(sync_tree) = Self::answer_proposal(p, all_synced) {
                    if sync_tree {
                        self.set_tree(|q| q.sync = true);
                    }
                    return true;
                }
                if !p.forward && !p.re_root {
                    self.set_tree(|q| q.re_root = true);
                    return true;
                }
                let go = p.fd_while <= now || (re_rooted && p.rb_while <= now);
                if go && !p.learn {
                    p.fd_while = now + p.forward_delay();
                    p.learn = true;
                    return true;
                }
                if go && p.learn && !p.forward {
                    p.fd_while = 0;
                    p.forward = true;
                    return true;
                }
                if p.re_root && p.forward {
                    p.re_root = false;
                    return true;
                }
                false
            }
            PortRole::Designated => Self::designated(p, now),
        }
    }

    fn designated(p: &mut Port, now: u64) -> bool {
        let rr_done = p.rr_while <= now;
        if !p.forward && !p.agreed && !p.proposing && !p.oper_edge {
            // DESIGNATED_PROPOSE
            p.proposing = true;
            p.edge_delay_while = now + p.edge_delay();
            p.new_info = true;
            return true;
        }
        if (!p.learning && !p.forwarding && !p.synced)
            || (p.agreed && !p.synced)
            || (p.oper_edge && !p.synced)
            || (p.sync && p.synced)
        {
            // DESIGNATED_SYNCED
            p.rr_while = 0;
            p.synced = true;
            p.sync = false;
            return true;
        }
        if rr_done && p.re_root {
            // DESIGNATED_RETIRED
            p.re_root = false;
            return true;
        }
        if ((p.sync && !p.synced) || (p.re_root && !rr_done) || p.disputed)
            && !p.oper_edge
            && (p.learn || p.forward)
        {
            // DESIGNATED_DISCARD
            p.learn = false;
            p.forward = false;
            p.disputed = false;
            p.fd_while = now + p.forward_delay();
            return true;
        }
        let go =
            (p.fd_while <= now || p.agreed || p.oper_edge) && (rr_done || !p.re_root) && !p.sync;
        if go && !p.learn {
            p.learn = true;
            p.fd_while = now + p.forward_delay();
            return true;
        }
        if go && p.learn && !p.forward {
            p.forward = true;
            p.fd_while = 0;
            p.agreed = p.send_rstp;
            return true;
        }
        false
    }

    // ---- Port State Transition (17.30) ----

    pub(super) fn state_transition(&mut self, i: usize) -> bool {
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return false;
        };
        match (p.learning, p.forwarding) {
            (false, _) if p.learn => p.learning = true,
            (true, false) if !p.learn => p.learning = false,
            (true, false) if p.forward => p.forwarding = true,
            (true, true) if !p.forward => {
                p.learning = false;
                p.forwarding = false;
            }
            _ => return false,
        }
        true
    }

    // ---- Topology Change (17.31) ----

    fn new_tc_while(&mut self, i: usize, now: u64) {
        let rt = self.root_times;
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return;
        };
        if p.tc_while <= now {
            if p.send_rstp {
                p.tc_while = now + p.hello_ms() + 1000;
                p.new_info = true;
            } else {
                p.tc_while = now + ms(rt.max_age) + ms(rt.fwd);
            }
        }
    }

    fn set_tc_prop_tree(&mut self, except: usize) {
        for (j, p) in self.ports.iter_mut().enumerate() {
            if let Some(p) = p.as_mut().filter(|_| j != except) {
                p.tc_prop = true;
            }
        }
    }

    pub(super) fn topology_change_sm(&mut self, i: usize, now: u64) -> bool {
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return false;
        };
        let rd = p.root_or_designated();
        let any_input = p.rcvd_tc || p.rcvd_tcn || p.rcvd_tc_ack || p.tc_prop;
        match p.tc_state {
            TcState::Inactive => {
                if !p.learn {
                    return false;
                }
                p.tc_state = TcState::Learning;
                p.clear_tc_inputs();
            }
            TcState::Learning => {
                if rd && p.forward && !p.oper_edge {
                    // DETECTED
                    p.tc_state = TcState::Active;
                    p.new_info = true;
                    self.new_tc_while(i, now);
                    self.set_tc_prop_tree(i);
                } else if any_input {
                    p.clear_tc_inputs();
                } else if !rd && !p.learn && !p.learning {
                    // INACTIVE: fdbFlush
                    p.tc_state = TcState::Inactive;
                    p.flush = true;
                    p.tc_while = 0;
                    p.tc_ack = false;
                } else {
                    return false;
                }
            }
            TcState::Active => {
                if !rd || p.oper_edge {
                    p.tc_state = TcState::Learning;
                    p.clear_tc_inputs();
                } else if p.rcvd_tcn || p.rcvd_tc {
                    // NOTIFIED_TCN (newTcWhile) then NOTIFIED_TC
                    let tcn = p.rcvd_tcn;
                    p.rcvd_tcn = false;
                    p.rcvd_tc = false;
                    if p.role == PortRole::Designated {
                        p.tc_ack = true;
                    }
                    if tcn {
                        self.new_tc_while(i, now);
                    }
                    self.set_tc_prop_tree(i);
                } else if p.tc_prop {
                    // PROPAGATING
                    p.tc_prop = false;
                    p.flush = true;
                    self.new_tc_while(i, now);
                } else if p.rcvd_tc_ack {
                    // ACKNOWLEDGED
                    p.tc_while = 0;
                    p.rcvd_tc_ack = false;
                } else {
                    return false;
                }
            }
        }
        true
    }

    // ---- Port Transmit (17.26) ----

    pub(super) fn transmit(&mut self, i: usize, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) -> bool {
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return false;
        };
        if !p.enabled() || !p.selected || p.updt_info {
            return false;
        }
        if p.hello_when <= now {
            // TRANSMIT_PERIODIC
            p.new_info |=
                p.role == PortRole::Designated || (p.role == PortRole::Root && p.tc_while > now);
            p.hello_when = now + p.hello_ms();
        }
        if !p.new_info || p.tx_count >= TX_HOLD_COUNT {
            return false;
        }
        let tc = if p.tc_while > now { FLAG_TC } else { 0 };
        let d = p.designated_prio;
        let t = p.designated_times;
        let mut c = ConfigBpdu {
            flags: tc,
            root: d.root,
            root_path_cost: d.cost,
            bridge: d.bridge,
            port: d.port,
            message_age: t.age,
            max_age: t.max_age,
            hello_time: t.hello,
            forward_delay: t.fwd,
        };
        let bpdu = if p.send_rstp {
            if p.role == PortRole::Disabled {
                return false;
            }
            c.flags |= role_flags(p.role)
                | if p.proposing { FLAG_PROPOSAL } else { 0 }
                | if p.learning { FLAG_LEARNING } else { 0 }
                | if p.forwarding { FLAG_FORWARDING } else { 0 }
                | if p.agree { FLAG_AGREEMENT } else { 0 };
            p.tc_ack = false;
            Bpdu::Rst(c)
        } else if p.role == PortRole::Designated {
            c.flags |= if p.tc_ack { FLAG_TCA } else { 0 };
            p.tc_ack = false;
            Bpdu::Config(c)
        } else if p.role == PortRole::Root {
            Bpdu::Tcn
        } else {
            return false;
        };
        p.new_info = false;
        p.tx_count += 1;
        p.hello_when = now + p.hello_ms();
        tx(i, bpdu);
        true
    }
}
