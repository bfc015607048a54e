// Install and update: registers the service worker (dist/sw.js) and, when a
// new build has been installed beside the running one, offers
// "Reload to update". The new version takes over only on that click, so a
// page never runs files of two builds (see web/sw/sw.js).
import { Workbox } from '../../vendor/workbox-window/workbox-window.prod.mjs';

const CHECK_EVERY_MS = 60 * 60 * 1000; // an app left open for days still notices a new build

/**
 * Show the update prompt once; `onReload` runs when it is pressed.
 * @param {() => void} onReload
 */
function offerUpdate(onReload) {
  if (document.getElementById('update')) return;
  const bar = document.createElement('div');
  bar.id = 'update';
  bar.className = 'update';
  bar.setAttribute('role', 'region');
  bar.setAttribute('aria-label', 'Update');
  const text = document.createElement('span');
  text.textContent = 'A new version is ready.';
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = 'Reload to update';
  button.addEventListener('click', () => {
    button.disabled = true;
    onReload();
  });
  bar.append(text, button);
  (document.querySelector('.dock') ?? document.body).prepend(bar);
}

/** Register the service worker; does nothing where there are none (or no secure context). */
export function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return null;
  const wb = new Workbox(new URL('../../sw.js', import.meta.url).href);
  // 'waiting': a new build is installed and waits for the pages of this one.
  wb.addEventListener('waiting', () => offerUpdate(() => wb.messageSkipWaiting()));
  // A new build took over (pressed here or in another tab): this page's files are
  // the old build's, so reload rather than mix. The first install takes control
  // of a page that had none, and that page is already of the same build.
  let controlled = navigator.serviceWorker.controller !== null;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (controlled) window.location.reload();
    controlled = true;
  });
  wb.register().catch((err) => console.warn('service worker not registered:', err));
  const check = () => wb.update().catch(() => {}); // offline: try again later
  setInterval(check, CHECK_EVERY_MS);
  document.addEventListener('visibilitychange', () => document.visibilityState === 'visible' && check());
  window.addEventListener('online', check);
  return wb;
}
