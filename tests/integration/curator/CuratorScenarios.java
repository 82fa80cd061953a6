// Apache Curator (Debian's libcurator-*-java, on Debian's ZooKeeper 3.8 Java
// client) against a server: `java CuratorScenarios HOST:PORT SCENARIO`.
// Each scenario drives one recipe or feature through real Curator clients
// and checks what it must guarantee; it prints "PASS <scenario>" and exits 0,
// or prints what went wrong and exits 1. test_curator.py compiles this file
// with javac and runs every scenario against corrald (or, with
// CORRAL_TEST_TARGET=zookeeper, against Apache ZooKeeper, to validate the
// test itself).

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.api.transaction.OperationType;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.cache.PathChildrenCache;
import org.apache.curator.framework.recipes.cache.PathChildrenCacheEvent;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

public final class CuratorScenarios {
    private static final long WAIT_S = 20;
    private static String hosts;
    private static final List<CuratorFramework> clients = new ArrayList<>();

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

    /** A started client; with digest credentials when user is not null. */
    private static CuratorFramework client(String user) throws Exception {
        CuratorFrameworkFactory.Builder b = CuratorFrameworkFactory.builder()
                .connectString(hosts)
                .sessionTimeoutMs(10000)
                .connectionTimeoutMs(10000)
                .retryPolicy(new RetryNTimes(20, 200));
        if (user != null)
            b.authorization("digest", bytes(user));
        CuratorFramework c = b.build();
        clients.add(c);
        c.start();
        check(c.blockUntilConnected((int) WAIT_S, TimeUnit.SECONDS), "client connects");
        return c;
    }

    // --- InterProcessMutex -------------------------------------------------

    /**
     * Mutual exclusion across sessions: four clients, each in its own
     * thread, take the same lock 25 times and do a read-modify-write of a
     * counter znode under it. No two ever hold it at once, no increment is
     * lost, a second acquire by another client waits, and the lock's nodes
     * are gone once released.
     */
    static void mutex() throws Exception {
        final String lockPath = "/curator/mutex";
        final String counter = "/curator/counter";
        CuratorFramework setup = client(null);
        setup.create().creatingParentsIfNeeded().forPath(counter, bytes("0"));

        // A held lock keeps another client out until it is released.
        InterProcessMutex a = new InterProcessMutex(client(null), lockPath);
        InterProcessMutex b = new InterProcessMutex(client(null), lockPath);
        check(a.acquire(WAIT_S, TimeUnit.SECONDS), "first client acquires the free lock");
        check(a.isAcquiredInThisProcess(), "holder knows it holds the lock");
        check(!b.acquire(300, TimeUnit.MILLISECONDS), "second client cannot acquire a held lock");
        a.release();
        check(b.acquire(WAIT_S, TimeUnit.SECONDS), "second client acquires once it is released");
        b.release();

        final int workers = 4, rounds = 25;
        final AtomicInteger holders = new AtomicInteger();
        final AtomicInteger maxHolders = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(workers);
        List<Future<?>> done = new ArrayList<>();
        for (int w = 0; w < workers; w++) {
            final CuratorFramework c = client(null);
            done.add(pool.submit(() -> {
                InterProcessMutex m = new InterProcessMutex(c, lockPath);
                for (int i = 0; i < rounds; i++) {
                    check(m.acquire(WAIT_S, TimeUnit.SECONDS), "worker acquires within " + WAIT_S + " s");
                    try {
                        int now = holders.incrementAndGet();
                        maxHolders.accumulateAndGet(now, Math::max);
                        int v = Integer.parseInt(str(c.getData().forPath(counter)));
                        c.setData().forPath(counter, bytes(Integer.toString(v + 1)));
                        holders.decrementAndGet();
                    } finally {
                        m.release();
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : done)
            f.get(120, TimeUnit.SECONDS);
        pool.shutdown();
        checkEq(1, maxHolders.get(), "most clients holding the lock at once");
        checkEq(Integer.toString(workers * rounds), str(setup.getData().forPath(counter)),
                "counter after every locked increment");
        checkEq(0, setup.getChildren().forPath(lockPath).size(), "lock nodes left after every release");
    }

    // --- LeaderLatch -------------------------------------------------------

    /**
     * Exactly one of three latches leads; when the leader's client goes
     * away (its session closes and its ephemeral goes), another takes over,
     * and every latch agrees who leads.
     */
    static void leaderLatch() throws Exception {
        final String path = "/curator/latch";
        List<LeaderLatch> latches = new ArrayList<>();
        List<CuratorFramework> owners = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            CuratorFramework c = client(null);
            LeaderLatch l = new LeaderLatch(c, path, "member-" + i);
            l.start();
            latches.add(l);
            owners.add(c);
        }
        LeaderLatch leader = awaitOneLeader(latches);
        String first = leader.getId();
        for (LeaderLatch l : latches)
            checkEq(first, l.getLeader().getId(), "leader seen by " + l.getId());

        int idx = latches.indexOf(leader);
        latches.remove(idx);
        owners.get(idx).close(); // closes the session: its latch node goes
        clients.remove(owners.get(idx));
        LeaderLatch next = awaitOneLeader(latches);
        check(!next.getId().equals(first), "a different member leads after the leader left");
        for (LeaderLatch l : latches)
            checkEq(next.getId(), l.getLeader().getId(), "new leader seen by " + l.getId());
        checkEq(2, latches.get(0).getParticipants().size(), "participants after the leader left");

        next.close(); // gives up leadership explicitly
        latches.remove(next);
        LeaderLatch last = awaitOneLeader(latches);
        checkEq(last.getId(), last.getLeader().getId(), "last member leads");
        last.close();
    }

    private static LeaderLatch awaitOneLeader(List<LeaderLatch> latches) throws Exception {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        while (System.nanoTime() < end) {
            List<LeaderLatch> leading = new ArrayList<>();
            for (LeaderLatch l : latches)
                if (l.hasLeadership())
                    leading.add(l);
            check(leading.size() <= 1, "at most one latch leads, saw " + leading.size());
            if (leading.size() == 1)
                return leading.get(0);
            for (LeaderLatch l : latches)
                if (l.await(100, TimeUnit.MILLISECONDS))
                    break;
        }
        throw new Failure("no leader within " + WAIT_S + " s");
    }

    // --- CuratorCache (persistent recursive watches) ------------------------

    /**
     * CuratorCache on ZooKeeper 3.6+ uses one persistent recursive watch
     * (addWatch PERSISTENT_RECURSIVE): creations, changes and deletions
     * anywhere below its root, at any depth, reach the listener in order,
     * and the cache mirrors the tree.
     */
    static void curatorCache() throws Exception {
        final String root = "/curator/cache";
        CuratorFramework c = client(null);
        c.create().creatingParentsIfNeeded().forPath(root + "/pre", bytes("before"));
        final BlockingQueue<String> events = new LinkedBlockingQueue<>();
        CuratorCache cache = CuratorCache.build(c, root);
        final CountDownLatch initialized = new CountDownLatch(1);
        cache.listenable().addListener(CuratorCacheListener.builder()
                .forCreates(n -> events.add("created " + n.getPath() + " " + str(n.getData())))
                .forChanges((o, n) -> events.add("changed " + n.getPath() + " " + str(o.getData())
                        + " -> " + str(n.getData())))
                .forDeletes(o -> events.add("deleted " + o.getPath()))
                .forInitialized(initialized::countDown)
                .build());
        cache.start();
        check(initialized.await(WAIT_S, TimeUnit.SECONDS), "cache initializes");
        // what the client registered: one persistent recursive watch on the
        // root, no one-shot child or data watch under it (the TreeCache
        // fallback would set those; Curator's own watch on /zookeeper/config
        // is not the cache's)
        org.apache.zookeeper.ZooKeeper zk = c.getZookeeperClient().getZooKeeper();
        checkEq(List.of(root), watches(zk, "getPersistentRecursiveWatches"),
                "persistent recursive watches");
        checkEq(List.of(), under(root, watches(zk, "getChildWatches")), "one-shot child watches");
        checkEq(List.of(), under(root, watches(zk, "getDataWatches")), "one-shot data watches");
        checkEq(List.of(), under(root, watches(zk, "getExistWatches")), "one-shot exist watches");
        expect(events, "created " + root + " ");
        expect(events, "created " + root + "/pre before");

        CuratorFramework writer = client(null);
        writer.create().forPath(root + "/a", bytes("1"));
        expect(events, "created " + root + "/a 1");
        writer.create().creatingParentsIfNeeded().forPath(root + "/a/b/c/d", bytes("deep"));
        expect(events, "created " + root + "/a/b ");
        expect(events, "created " + root + "/a/b/c ");
        expect(events, "created " + root + "/a/b/c/d deep");
        writer.setData().forPath(root + "/a/b/c/d", bytes("deeper"));
        expect(events, "changed " + root + "/a/b/c/d deep -> deeper");
        writer.setData().forPath(root + "/a", bytes("2"));
        expect(events, "changed " + root + "/a 1 -> 2");
        writer.delete().forPath(root + "/a/b/c/d");
        expect(events, "deleted " + root + "/a/b/c/d");
        writer.delete().deletingChildrenIfNeeded().forPath(root + "/a");
        // deletions of a subtree come deepest first
        expect(events, "deleted " + root + "/a/b/c");
        expect(events, "deleted " + root + "/a/b");
        expect(events, "deleted " + root + "/a");

        Map<String, String> seen = new TreeMap<>();
        cache.stream().forEach(d -> seen.put(d.getPath(), str(d.getData())));
        Map<String, String> want = new TreeMap<>();
        want.put(root, "");
        want.put(root + "/pre", "before");
        checkEq(want, seen, "cache contents");
        cache.close();
        check(events.poll(200, TimeUnit.MILLISECONDS) == null, "no event left unexpected: " + events);
    }

    /** The client's own record of its watches (protected: for tests). */
    @SuppressWarnings("unchecked")
    private static List<String> watches(org.apache.zookeeper.ZooKeeper zk, String getter)
            throws Exception {
        java.lang.reflect.Method m = org.apache.zookeeper.ZooKeeper.class.getDeclaredMethod(getter);
        m.setAccessible(true);
        return new ArrayList<>((List<String>) m.invoke(zk));
    }

    private static List<String> under(String root, List<String> paths) {
        List<String> out = new ArrayList<>();
        for (String p : paths)
            if (p.equals(root) || p.startsWith(root + "/"))
                out.add(p);
        return out;
    }

    private static void expect(BlockingQueue<String> events, String want) throws Exception {
        String got = events.poll(WAIT_S, TimeUnit.SECONDS);
        checkEq(want, got, "next cache event");
    }

    // --- PathChildrenCache --------------------------------------------------

    /**
     * PathChildrenCache (one-shot child and data watches, re-registered by
     * Curator): children added, updated and removed, including an ephemeral
     * child that goes with its owner's session.
     */
    static void pathChildrenCache() throws Exception {
        final String root = "/curator/children";
        CuratorFramework c = client(null);
        c.create().creatingParentsIfNeeded().forPath(root);
        final BlockingQueue<String> events = new LinkedBlockingQueue<>();
        PathChildrenCache cache = new PathChildrenCache(c, root, true);
        cache.getListenable().addListener((cl, e) -> {
            ChildData d = e.getData();
            if (d != null)
                events.add(e.getType() + " " + d.getPath() + " " + str(d.getData()));
            else
                events.add(e.getType().toString());
        });
        cache.start(PathChildrenCache.StartMode.POST_INITIALIZED_EVENT);
        expect(events, "INITIALIZED");

        CuratorFramework other = client(null);
        other.create().forPath(root + "/x", bytes("x1"));
        expect(events, "CHILD_ADDED " + root + "/x x1");
        other.setData().forPath(root + "/x", bytes("x2"));
        expect(events, "CHILD_UPDATED " + root + "/x x2");
        other.create().withMode(CreateMode.EPHEMERAL).forPath(root + "/e", bytes("eph"));
        expect(events, "CHILD_ADDED " + root + "/e eph");
        other.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(root + "/s-", bytes("seq"));
        expect(events, "CHILD_ADDED " + root + "/s-0000000002 seq");
        checkEq(3, cache.getCurrentData().size(), "children in the cache");
        checkEq("x2", str(cache.getCurrentData(root + "/x").getData()), "cached data of x");

        other.close(); // its session closes: the ephemeral child goes
        clients.remove(other);
        expect(events, "CHILD_REMOVED " + root + "/e eph");
        c.delete().forPath(root + "/x");
        expect(events, "CHILD_REMOVED " + root + "/x x2");
        checkEq(1, cache.getCurrentData().size(), "children in the cache at the end");
        cache.close();
    }

    // --- transactions -------------------------------------------------------

    /**
     * A Curator transaction is one multi: every op applies, with a result
     * per op; and when one op fails (a check on a stale version) none does.
     */
    static void transaction() throws Exception {
        final String root = "/curator/txn";
        CuratorFramework c = client(null);
        c.create().creatingParentsIfNeeded().forPath(root + "/gone", bytes("g"));
        c.create().forPath(root + "/kept", bytes("k"));
        Stat kept = c.checkExists().forPath(root + "/kept");

        List<CuratorOp> ops = new ArrayList<>();
        ops.add(c.transactionOp().check().withVersion(kept.getVersion()).forPath(root + "/kept"));
        ops.add(c.transactionOp().create().forPath(root + "/new", bytes("n")));
        ops.add(c.transactionOp().create().withMode(CreateMode.PERSISTENT_SEQUENTIAL)
                .forPath(root + "/seq-", bytes("s")));
        ops.add(c.transactionOp().setData().forPath(root + "/kept", bytes("k2")));
        ops.add(c.transactionOp().delete().forPath(root + "/gone"));
        List<CuratorTransactionResult> results = c.transaction().forOperations(ops);
        checkEq(5, results.size(), "results of a committed transaction");
        checkEq(OperationType.CHECK, results.get(0).getType(), "result 0 type");
        checkEq(root + "/new", results.get(1).getResultPath(), "created path");
        checkEq(root + "/seq-0000000003", results.get(2).getResultPath(), "sequential path in a transaction");
        checkEq(OperationType.SET_DATA, results.get(3).getType(), "result 3 type");
        checkEq(kept.getVersion() + 1, results.get(3).getResultStat().getVersion(), "version after setData");
        checkEq(OperationType.DELETE, results.get(4).getType(), "result 4 type");
        check(c.checkExists().forPath(root + "/gone") == null, "deleted in the transaction");
        // every op of one transaction carries the same zxid
        Stat n = c.checkExists().forPath(root + "/new");
        Stat k = c.checkExists().forPath(root + "/kept");
        checkEq(n.getCzxid(), k.getMzxid(), "one zxid for the whole transaction");

        List<CuratorOp> failing = new ArrayList<>();
        failing.add(c.transactionOp().create().forPath(root + "/never", bytes("n")));
        failing.add(c.transactionOp().check().withVersion(kept.getVersion()).forPath(root + "/kept"));
        failing.add(c.transactionOp().setData().forPath(root + "/kept", bytes("k3")));
        try {
            c.transaction().forOperations(failing);
            throw new Failure("a transaction with a stale check committed");
        } catch (KeeperException.BadVersionException expected) {
            // one result per op: 0 for those before the failing one (rolled
            // back), its error, and RUNTIMEINCONSISTENCY (-2) for those after
            List<Integer> errs = new ArrayList<>();
            for (org.apache.zookeeper.OpResult r : expected.getResults())
                errs.add(((org.apache.zookeeper.OpResult.ErrorResult) r).getErr());
            checkEq(List.of(0, KeeperException.Code.BADVERSION.intValue(),
                    KeeperException.Code.RUNTIMEINCONSISTENCY.intValue()), errs,
                    "per-op results of the failed transaction");
        }
        check(c.checkExists().forPath(root + "/never") == null, "nothing of a failed transaction applies");
        checkEq("k2", str(c.getData().forPath(root + "/kept")), "data after a failed transaction");
    }

    // --- digest ACLs --------------------------------------------------------

    /**
     * Digest authentication (the client's credentials, the server's SHA-1
     * digest) and ACLs: the owner reads and writes; anonymous clients and
     * another user get NoAuth; a second session of the owner gets in; setACL
     * with a version; and a CREATOR_ALL_ACL node belongs to whoever made it.
     */
    static void digestAcls() throws Exception {
        final String path = "/curator/secret";
        CuratorFramework alice = client("alice:wonderland");
        CuratorFramework bob = client("bob:builder");
        CuratorFramework anon = client(null);
        String aliceDigest = DigestAuthenticationProvider.generateDigest("alice:wonderland");
        List<ACL> aliceOnly = List.of(new ACL(ZooDefs.Perms.ALL, new Id("digest", aliceDigest)));
        alice.create().creatingParentsIfNeeded().withACL(aliceOnly).forPath(path, bytes("s3cret"));

        checkEq("s3cret", str(alice.getData().forPath(path)), "owner reads");
        checkEq(aliceOnly, alice.getACL().forPath(path), "ACL as stored");
        expectNoAuth(() -> anon.getData().forPath(path), "anonymous read");
        expectNoAuth(() -> bob.getData().forPath(path), "bob's read");
        expectNoAuth(() -> bob.setData().forPath(path, bytes("x")), "bob's write");
        CuratorFramework alice2 = client("alice:wonderland");
        alice2.setData().forPath(path, bytes("changed"));
        checkEq("changed", str(alice.getData().forPath(path)), "owner's second session writes");

        // open reading to everyone, with the ACL version checked
        List<ACL> opened = List.of(new ACL(ZooDefs.Perms.ALL, new Id("digest", aliceDigest)),
                new ACL(ZooDefs.Perms.READ, ZooDefs.Ids.ANYONE_ID_UNSAFE));
        try {
            alice.setACL().withVersion(5).withACL(opened).forPath(path);
            throw new Failure("setACL with a wrong aversion succeeded");
        } catch (KeeperException.BadVersionException expected) {
            // as specified
        }
        alice.setACL().withVersion(0).withACL(opened).forPath(path);
        checkEq("changed", str(anon.getData().forPath(path)), "anonymous read once opened");
        expectNoAuth(() -> anon.setData().forPath(path, bytes("x")), "anonymous write once opened");
        checkEq(1, alice.checkExists().forPath(path).getAversion(), "aversion after setACL");

        // CREATOR_ALL_ACL: the "auth" scheme stands for the creator's identities
        bob.create().withACL(ZooDefs.Ids.CREATOR_ALL_ACL).forPath(path + "-bob", bytes("b"));
        List<ACL> stored = bob.getACL().forPath(path + "-bob");
        checkEq(1, stored.size(), "entries of a CREATOR_ALL_ACL node");
        checkEq(new Id("digest", DigestAuthenticationProvider.generateDigest("bob:builder")),
                stored.get(0).getId(), "creator's identity in the ACL");
        expectNoAuth(() -> alice.getData().forPath(path + "-bob"), "alice reads bob's node");
        checkEq("b", str(bob.getData().forPath(path + "-bob")), "bob reads his node");
        expectNoAuth(() -> anon.create().withACL(ZooDefs.Ids.CREATOR_ALL_ACL).forPath("/curator/anon"),
                "CREATOR_ALL_ACL without credentials");
    }

    private interface Op {
        void run() throws Exception;
    }

    private static void expectNoAuth(Op op, String what) throws Exception {
        try {
            op.run();
        } catch (KeeperException.NoAuthException expected) {
            return;
        } catch (KeeperException.InvalidACLException expected) {
            // ZooKeeper answers INVALIDACL for an "auth" ACL with no credentials
            if (what.contains("without credentials"))
                return;
            throw expected;
        }
        throw new Failure(what + " was allowed");
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: CuratorScenarios HOST:PORT SCENARIO");
            System.exit(2);
        }
        hosts = args[0];
        String scenario = args[1];
        int status = 0;
        try {
            switch (scenario) {
                case "mutex": mutex(); break;
                case "leader_latch": leaderLatch(); break;
                case "curator_cache": curatorCache(); break;
                case "path_children_cache": pathChildrenCache(); break;
                case "transaction": transaction(); break;
                case "digest_acls": digestAcls(); break;
                default:
                    System.err.println("unknown scenario " + scenario);
                    System.exit(2);
            }
            System.out.println("PASS " + scenario);
        } catch (Throwable t) {
            System.out.println("FAIL " + scenario + ": " + t);
            t.printStackTrace(System.out);
            status = 1;
        } finally {
            for (CuratorFramework c : clients)
                c.close();
        }
        System.exit(status);
    }
}
