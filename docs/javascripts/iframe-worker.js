// fisherlab's stand-in for `Worker` when the site is read from disk (file://).
//
// Browsers refuse to start a web worker from a file:// page, and MkDocs Material runs its search
// in one. Its offline plugin would load a shim from a CDN at view time; this file (its name tells
// the plugin that a shim is present) keeps the site free of network access. It runs the worker's
// script in a hidden iframe of the same page: the script's global `addEventListener("message")`
// and `postMessage` are bridged to the Worker interface (`postMessage`, `addEventListener`,
// `onmessage`, `terminate`) the search code expects. Served over http(s), the browser's own
// Worker is left alone.
(function () {
  "use strict";
  if (window.location.protocol !== "file:") {
    return;
  }

  class FrameWorker extends EventTarget {
    constructor(url) {
      super();
      this.onmessage = null;
      this.onerror = null;
      this._pending = [];
      this._ready = false;
      this._frame = document.createElement("iframe");
      this._frame.hidden = true;
      this._frame.tabIndex = -1;
      this._frame.setAttribute("aria-hidden", "true");
      this._frame.setAttribute("title", "search");
      (document.body || document.documentElement).appendChild(this._frame);

      const scope = this._frame.contentWindow;
      const host = this;
      // What the worker posts comes back to the page as a "message" event, asynchronously, as
      // from a real worker.
      scope.postMessage = function (data) {
        window.setTimeout(function () {
          host._emit("message", data);
        }, 0);
      };
      scope.importScripts = function () {
        throw new Error("importScripts is not available to the offline search");
      };
      const script = scope.document.createElement("script");
      script.src = new URL(url, window.location.href).href;
      script.onload = function () {
        host._ready = true;
        host._pending.splice(0).forEach(function (data) {
          host._deliver(data);
        });
      };
      script.onerror = function () {
        host._emit("error", new Error("could not load " + script.src));
      };
      scope.document.head.appendChild(script);
    }

    postMessage(data) {
      if (this._ready) {
        this._deliver(data);
      } else {
        this._pending.push(data);
      }
    }

    terminate() {
      this._frame.remove();
    }

    _deliver(data) {
      const scope = this._frame.contentWindow;
      window.setTimeout(function () {
        scope.dispatchEvent(new scope.MessageEvent("message", { data: data }));
      }, 0);
    }

    _emit(type, data) {
      const event =
        type === "message" ? new MessageEvent("message", { data: data }) : new ErrorEvent("error", { error: data });
      const handler = type === "message" ? this.onmessage : this.onerror;
      if (typeof handler === "function") {
        handler.call(this, event);
      }
      this.dispatchEvent(event);
    }
  }

  window.Worker = FrameWorker;
})();
