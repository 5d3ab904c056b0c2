import net from "node:net";

/**
 * Preloaded into supergateway (`node --import`), which listens on every interface and has no option
 * for the address: a `listen(port[, callback])` becomes `listen(port, "127.0.0.1"[, callback])`, so the
 * bench never exposes a server beyond this machine.
 */
type Listen = (this: net.Server, ...args: unknown[]) => net.Server;
const listen = net.Server.prototype.listen as Listen;
const listenOnLoopback: Listen = function (this: net.Server, ...args: unknown[]) {
  if (typeof args[0] === "number" && typeof args[1] !== "string") {
    return listen.call(this, args[0], "127.0.0.1", ...args.slice(1).filter((a) => typeof a === "function"));
  }
  return listen.apply(this, args);
};
net.Server.prototype.listen = listenOnLoopback as typeof net.Server.prototype.listen;
