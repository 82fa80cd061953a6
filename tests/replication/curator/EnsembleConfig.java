// What Curator's EnsembleTracker makes of /zookeeper/config's data: it
// loads the data as properties, builds ZooKeeper's QuorumMaj from them
// (QuorumServer parses each server line and refuses, among others, equal
// quorum and election ports) and turns that into a connection string.
// Reads the data on stdin; prints the connection string, or "REFUSED: why"
// and exits 1. Run with java's single-file source launcher against
// Debian's jars (test_ensemble_compat.py).
import java.io.ByteArrayInputStream;
import java.util.Properties;

import org.apache.curator.framework.imps.EnsembleTracker;
import org.apache.zookeeper.server.quorum.flexible.QuorumMaj;

public class EnsembleConfig {
    public static void main(String[] args) throws Exception {
        byte[] data = System.in.readAllBytes();
        Properties properties = new Properties();
        properties.load(new ByteArrayInputStream(data));
        try {
            QuorumMaj config = new QuorumMaj(properties);
            System.out.println(EnsembleTracker.configToConnectionString(config));
        } catch (Exception e) {
            System.out.println("REFUSED: " + e);
            System.exit(1);
        }
    }
}
