// Apache Curator (Debian's libcurator-*-java on Debian's ZooKeeper 3.8 Java
// client) against an ensemble whose leader is killed mid-run:
//
//   java ReplicationScenarios LEADER_FIRST FOLLOWERS_FIRST failover
//
// LEADER_FIRST and FOLLOWERS_FIRST are connect strings of the same servers
// in two orders; every client here tries its servers in the order given
// (an ordered HostProvider instead of the client's shuffle), so the test
// knows which clients sit on the leader when it dies. The program sets up,
// prints "READY" and waits for a line on stdin: the test kills the leader
// (SIGKILL) and writes "KILLED". Then it checks what the recipes promise
// across that failover, prints "PASS failover" and exits 0, or prints what
// went wrong and exits 1.
//
// What is checked:
// - InterProcessMutex: a lock held across the failover stays held by its
//   holder (same session, its lock node still there and first), another
//   client cannot take it and gets it only once the holder releases it;
//   and four workers taking a second lock in a loop throughout the failover
//   never hold it two at once, and lose no update made under it (each
//   conditional setData of a counter either applies once or, if Curator
//   retried it after a lost connection, finds its own value there).
// - LeaderLatch: of three latches exactly one leads at every moment
//   sampled, and it is the same one before and after the failover (its
//   session lives on; with SessionConnectionStateErrorPolicy a latch keeps
//   leadership through a reconnect, as it should while its session lives).

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.state.SessionConnectionStateErrorPolicy;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.utils.ZookeeperFactory;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.client.HostProvider;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.Stat;

public final class ReplicationScenarios {
    private static final long WAIT_S = 30;
    private static final List<CuratorFramework> clients = Collections.synchronizedList(new ArrayList<>());

    private static final class Failure extends RuntimeException {
        Failure(String message) {
            super(message);
        }
    }

    private static void check(boolean ok, String what) {
        if (!ok)
            throw new Failure(what);
    }

    private static void checkEq(Object want, Object got, String what) {
        if (want == null ? got != null : !want.equals(got))
            throw new Failure(what + ": want <" + want + ">, got <" + got + ">");
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String str(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    private static void say(String s) {
        System.out.println(s);
        System.out.flush();
    }

    /** Tries the servers in the order given, as StaticHostProvider does
     * after its shuffle: round robin, a pause once all were tried. */
    static final class OrderedHostProvider implements HostProvider {
        private final List<InetSocketAddress> addrs = new ArrayList<>();
        private int current = -1, last = -1;

        OrderedHostProvider(String hosts) {
            for (String h : hosts.split(",")) {
                int k = h.lastIndexOf(':');
                addrs.add(new InetSocketAddress(h.substring(0, k), Integer.parseInt(h.substring(k + 1))));
            }
        }

        public int size() {
            return addrs.size();
        }

        public InetSocketAddress next(long spinDelay) {
            current = (current + 1) % addrs.size();
            if (current == last && spinDelay > 0) {
                try {
                    Thread.sleep(spinDelay);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            } else if (last == -1) {
                last = 0;
            }
            return addrs.get(current);
        }

        public void onConnected() {
            last = current;
        }

        public boolean updateServerList(Collection<InetSocketAddress> a, InetSocketAddress b) {
            return false;
        }
    }

    /** What the servers answered that no server may answer; reported with the failure. */
    private static final List<String> badReplies = Collections.synchronizedList(new ArrayList<>());

    /** The client, checking one thing of every create's reply: a create that
     * succeeds names the node it made (Curator's locks and latches depend on
     * it; a null path there surfaces much later as "Path cannot be null"). */
    static final class CheckingZooKeeper extends ZooKeeper {
        CheckingZooKeeper(String connect, int timeout, Watcher w, boolean ro, ZKClientConfig config)
                throws java.io.IOException {
            super(connect, timeout, w, ro, new OrderedHostProvider(connect), config);
        }

        @Override
        public String create(String path, byte[] data, List<org.apache.zookeeper.data.ACL> acl,
                             org.apache.zookeeper.CreateMode mode, Stat stat, long ttl)
                throws KeeperException, InterruptedException {
            long sid = getSessionId();
            String got = super.create(path, data, acl, mode, stat, ttl);
            if (got == null || !got.startsWith(path))
                badReplies.add("session 0x" + Long.toHexString(sid) + ": create " + path + " ("
                               + mode + ") succeeded with path " + got + " and stat " + stat
                               + " (server " + where(this) + ")");
            return got;
        }
    }

    static final class OrderedFactory implements ZookeeperFactory {
        public ZooKeeper newZooKeeper(String connect, int timeout, Watcher w, boolean ro) throws Exception {
            return new CheckingZooKeeper(connect, timeout, w, ro, new ZKClientConfig());
        }

        public ZooKeeper newZooKeeper(String connect, int timeout, Watcher w, boolean ro,
                                      ZKClientConfig config) throws Exception {
            return new CheckingZooKeeper(connect, timeout, w, ro, config);
        }
    }

    private static CuratorFramework client(String hosts) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.builder()
                .connectString(hosts)
                .zookeeperFactory(new OrderedFactory())
                .sessionTimeoutMs(15000)
                .connectionTimeoutMs(15000)
                .retryPolicy(new RetryNTimes(150, 200))
                .connectionStateErrorPolicy(new SessionConnectionStateErrorPolicy())
                .build();
        clients.add(c);
        c.start();
        check(c.blockUntilConnected((int) WAIT_S, TimeUnit.SECONDS), "client connects");
        return c;
    }

    private static long session(CuratorFramework c) throws Exception {
        return c.getZookeeperClient().getZooKeeper().getSessionId();
    }

    /** The client's own description: includes the server it is connected to. */
    private static String where(CuratorFramework c) throws Exception {
        return where(c.getZookeeperClient().getZooKeeper());
    }

    private static String where(ZooKeeper zk) {
        String s = zk.toString();
        int k = s.indexOf("remoteserver:");
        return k < 0 ? "?" : s.substring(k + 13).split("\\s")[0];
    }

    // ------------------------------------------------------------ failover

    static void failover(String leaderFirst, String followersFirst) throws Exception {
        final String heldPath = "/repl/held";
        final String workPath = "/repl/work";
        final String counter = "/repl/counter";
        final String latchPath = "/repl/latch";

        CuratorFramework setup = client(followersFirst);
        setup.create().creatingParentsIfNeeded().forPath(counter, bytes("0:init"));

        // the lock held across the failover, by a client on the leader
        CuratorFramework holderC = client(leaderFirst);
        CuratorFramework waiterC = client(followersFirst);
        InterProcessMutex held = new InterProcessMutex(holderC, heldPath);
        check(held.acquire(WAIT_S, TimeUnit.SECONDS), "holder acquires the free lock");
        final long holderSession = session(holderC);

        // latches: the first, on the leader, leads
        List<LeaderLatch> latches = new ArrayList<>();
        List<CuratorFramework> latchClients = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            CuratorFramework c = client(i == 0 ? leaderFirst : followersFirst);
            latchClients.add(c);
            LeaderLatch l = new LeaderLatch(c, latchPath, "member-" + i);
            l.start();
            latches.add(l);
            if (i == 0)
                check(l.await(WAIT_S, TimeUnit.SECONDS), "the first latch leads");
        }
        for (LeaderLatch l : latches)
            awaitLeaderSeen(l, "member-0");
        long[] latchSessions = new long[3];
        for (int i = 0; i < 3; i++)
            latchSessions[i] = session(latchClients.get(i));

        // watch the latches all along: never two leading, member-0 never lets go
        final AtomicBoolean stopMonitor = new AtomicBoolean();
        final AtomicInteger maxLeading = new AtomicInteger();
        final AtomicInteger samples = new AtomicInteger();
        final AtomicInteger member0Lost = new AtomicInteger();
        Thread monitor = new Thread(() -> {
            while (!stopMonitor.get()) {
                int leading = 0;
                for (LeaderLatch l : latches)
                    if (l.hasLeadership())
                        leading++;
                maxLeading.accumulateAndGet(leading, Math::max);
                if (!latches.get(0).hasLeadership())
                    member0Lost.incrementAndGet();
                samples.incrementAndGet();
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        monitor.start();

        // workers: a locked read-modify-write of the counter, in a loop
        final int workers = 4;
        final AtomicInteger holders = new AtomicInteger();
        final AtomicInteger maxHolders = new AtomicInteger();
        final AtomicInteger successes = new AtomicInteger();
        final AtomicInteger ownRetries = new AtomicInteger();
        final AtomicLong killedAt = new AtomicLong(Long.MAX_VALUE);
        final AtomicInteger afterKill = new AtomicInteger();
        final AtomicBoolean stopWorkers = new AtomicBoolean();
        final List<String> violations = Collections.synchronizedList(new ArrayList<>());
        ExecutorService pool = Executors.newFixedThreadPool(workers + 1);
        List<Future<?>> done = new ArrayList<>();
        for (int w = 0; w < workers; w++) {
            final int wid = w;
            final CuratorFramework c = client(w % 2 == 0 ? leaderFirst : followersFirst);
            done.add(pool.submit(() -> {
                InterProcessMutex m = new InterProcessMutex(c, workPath);
                for (int round = 0; !stopWorkers.get(); round++) {
                    check(m.acquire(WAIT_S, TimeUnit.SECONDS),
                          "worker " + wid + " acquires within " + WAIT_S + " s");
                    try {
                        int now = holders.incrementAndGet();
                        maxHolders.accumulateAndGet(now, Math::max);
                        Stat st = new Stat();
                        String cur = str(c.getData().storingStatIn(st).forPath(counter));
                        int val = Integer.parseInt(cur.split(":")[0]);
                        String mine = (val + 1) + ":w" + wid + "-r" + round;
                        try {
                            c.setData().withVersion(st.getVersion()).forPath(counter, bytes(mine));
                        } catch (KeeperException.BadVersionException e) {
                            // Curator retried after a lost connection and the first
                            // attempt had applied -- or someone else wrote while we
                            // held the lock
                            String again = str(c.getData().forPath(counter));
                            if (!mine.equals(again))
                                violations.add("worker " + wid + " round " + round + ": counter was "
                                               + cur + ", it wrote " + mine + " conditionally and got "
                                               + "BADVERSION, the counter now holds " + again);
                            ownRetries.incrementAndGet();
                        }
                        successes.incrementAndGet();
                        if (System.nanoTime() > killedAt.get())
                            afterKill.incrementAndGet();
                        holders.decrementAndGet();
                    } finally {
                        m.release();
                    }
                }
                return null;
            }));
        }

        // let the workers get going, then hand over to the test
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        while (successes.get() < 20 && System.nanoTime() < end)
            Thread.sleep(10);
        check(successes.get() >= 20, "workers make progress before the failover: " + successes.get());
        StringBuilder on = new StringBuilder();
        on.append("holder on ").append(where(holderC)).append(", member-0 on ")
          .append(where(latchClients.get(0)));
        say("READY " + on);

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line = in.readLine();
        checkEq("KILLED", line, "the test's word");
        long tKilled = System.nanoTime();
        killedAt.set(tKilled);

        // the workers carry on through the failover
        end = System.nanoTime() + TimeUnit.SECONDS.toNanos(2 * WAIT_S);
        while (afterKill.get() < 40 && System.nanoTime() < end) {
            for (Future<?> f : done)
                if (f.isDone())
                    f.get(); // a worker that failed: its exception
            Thread.sleep(10);
        }
        check(afterKill.get() >= 40, "workers make progress after the leader's kill: " + afterKill.get());
        long firstRoundsMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - tKilled);

        // the held lock: same session, still held, its node first
        check(holderC.getZookeeperClient().blockUntilConnectedOrTimedOut(), "holder reconnects");
        checkEq(holderSession, session(holderC), "holder's session after the failover");
        check(held.isAcquiredInThisProcess(), "holder still holds the lock");
        waiterC.sync().forPath(heldPath);
        List<String> nodes = new ArrayList<>(waiterC.getChildren().forPath(heldPath));
        checkEq(1, nodes.size(), "lock nodes under " + heldPath + " (" + nodes + ")");
        Stat st = waiterC.checkExists().forPath(heldPath + "/" + nodes.get(0));
        checkEq(holderSession, st.getEphemeralOwner(), "owner of the lock node");
        InterProcessMutex waiting = new InterProcessMutex(waiterC, heldPath);
        check(!waiting.acquire(2, TimeUnit.SECONDS), "a second client cannot take the held lock");
        // a mutex belongs to the thread that acquired it: the waiter's own thread
        ExecutorService waiterThread = Executors.newSingleThreadExecutor();
        Future<Boolean> got = waiterThread.submit(() -> waiting.acquire(WAIT_S, TimeUnit.SECONDS));
        end = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        while (waiterC.getChildren().forPath(heldPath).size() < 2 && System.nanoTime() < end)
            Thread.sleep(10);
        checkEq(2, waiterC.getChildren().forPath(heldPath).size(), "holder's and waiter's lock nodes");
        check(!got.isDone(), "the waiter waits while the holder holds the lock");
        held.release();
        check(got.get(WAIT_S, TimeUnit.SECONDS), "the waiter gets the lock once the holder releases it");
        check(waiting.isAcquiredInThisProcess(), "waiter holds the lock");
        waiterThread.submit(() -> {
            waiting.release();
            return null;
        }).get(WAIT_S, TimeUnit.SECONDS);
        waiterThread.shutdown();

        // the latches: member-0 leads, as before, and its session lives on
        for (LeaderLatch l : latches)
            awaitLeaderSeen(l, "member-0");
        for (int i = 0; i < 3; i++)
            checkEq(latchSessions[i], session(latchClients.get(i)), "latch " + i + "'s session");
        checkEq(3, latches.get(1).getParticipants().size(), "latch participants");

        // stop the workers and the monitor, then count
        stopWorkers.set(true);
        for (Future<?> f : done)
            f.get(2 * WAIT_S, TimeUnit.SECONDS);
        stopMonitor.set(true);
        monitor.join();
        pool.shutdown();
        check(violations.isEmpty(), "lock exclusion violated: " + violations);
        checkEq(1, maxHolders.get(), "most workers holding the lock at once");
        setup.sync().forPath(counter);
        String fin = str(setup.getData().forPath(counter));
        checkEq(successes.get(), Integer.parseInt(fin.split(":")[0]), "counter against locked increments");
        checkEq(1, maxLeading.get(), "most latches leading at once");
        checkEq(0, member0Lost.get(), "samples in which member-0 did not lead (of " + samples.get() + ")");
        check(badReplies.isEmpty(), "bad replies: " + badReplies);

        for (LeaderLatch l : latches)
            l.close();
        say("failover: " + successes.get() + " locked increments (" + afterKill.get()
            + " after the kill, the first 40 within " + firstRoundsMs + " ms; " + ownRetries.get()
            + " setData retried by Curator found their own value), " + samples.get()
            + " latch samples, all with member-0 alone leading");
    }

    private static void awaitLeaderSeen(LeaderLatch l, String id) throws Exception {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        String seen = null;
        while (System.nanoTime() < end) {
            try {
                seen = l.getLeader().getId();
                if (id.equals(seen))
                    return;
            } catch (KeeperException e) {
                seen = e.toString();
            }
            Thread.sleep(20);
        }
        throw new Failure(l.getId() + " sees leader " + seen + ", want " + id);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: ReplicationScenarios LEADER_FIRST FOLLOWERS_FIRST SCENARIO");
            System.exit(2);
        }
        int status = 0;
        try {
            switch (args[2]) {
            case "failover":
                failover(args[0], args[1]);
                break;
            default:
                throw new Failure("unknown scenario " + args[2]);
            }
            say("PASS " + args[2]);
        } catch (Throwable t) {
            say("FAIL " + args[2] + ": " + t);
            for (String b : badReplies)
                say("bad reply: " + b);
            t.printStackTrace(System.out);
            status = 1;
        } finally {
            for (CuratorFramework c : clients) {
                try {
                    c.close();
                } catch (Throwable t) {
                    // already failing or closing: nothing more to report
                }
            }
        }
        System.out.flush();
        Runtime.getRuntime().halt(status);
    }
}
