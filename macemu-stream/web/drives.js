// Drives panel: each drive's state from GET /api/drives, insert and eject, and disk images dropped on
// the page uploaded (PUT /api/disks/NAME) into the server's disk folder and inserted.

const DRIVES_POLL_MS = 2000;
// Larger files go to SCSI: the biggest floppy image the Plus takes is an 800K DiskCopy 4.2 file.
const FLOPPY_MAX_BYTES = 1024 * 1024;
// How long an insert waits for the emulator's report before saying it has none yet.
const INSERT_WAIT_MS = 5000;

const LABELS = {
  floppy0: 'Internal floppy',
  floppy1: 'External floppy',
};

function label(drive) {
  return LABELS[drive] || drive.replace(/^scsi(\d)$/, 'SCSI ID $1');
}

function size(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${Math.round(bytes / 1024)} KB`;
}

export class Drives {
  // api(path, body?) → JSON (throws with the server's message); authorize(xhr) adds the token;
  // diskNames() → the images in the disk folder; onUploaded() after an upload landed.
  constructor({ list, drop, picker, message, api, authorize, log, diskNames, onUploaded }) {
    Object.assign(this, { list, drop, picker, message, api, authorize, log, diskNames, onUploaded });
    this.state = new Map(); // drive → last report
    this.maxUpload = 0;
    this.uploading = false;
    this.wireDrop();
  }

  start() {
    this.poll();
    setInterval(() => this.poll(), DRIVES_POLL_MS);
  }

  async poll() {
    let r;
    try {
      r = await this.api('/api/drives');
    } catch (e) {
      this.render(null, e.message);
      return;
    }
    this.maxUpload = r.max_upload_bytes || 0;
    for (const d of r.drives) {
      const before = this.state.get(d.drive);
      if (before && !before.empty && d.empty && d.ejected_by_mac) {
        this.log('info', `The Mac ejected ${before.name} from the ${label(d.drive).toLowerCase()}`);
      }
      if (d.error && (!before || before.error !== d.error)) this.log('warn', `${label(d.drive)}: ${d.error}`);
      this.state.set(d.drive, d);
    }
    this.render(r);
  }

  render(r, error) {
    if (!r || !r.attached) {
      this.list.replaceChildren();
      this.note(error ? `Drives unavailable: ${error}` : 'No emulator attached.');
      return;
    }
    this.note(r.drives.length ? '' : 'Waiting for the emulator to report its drives…');
    const items = r.drives.map((d) => {
      const li = document.createElement('li');
      li.dataset.drive = d.drive;
      li.dataset.state = d.empty ? 'empty' : 'inserted';
      const name = document.createElement('span');
      name.className = 'drive-name';
      name.textContent = `${label(d.drive)}: `;
      const what = document.createElement('span');
      if (d.empty) {
        what.textContent = 'empty';
        li.append(name, what, this.insertControls(d.drive));
      } else {
        what.textContent = `${d.name} (${size(d.bytes)}, ${d.format}${d.read_only ? ', locked' : ''})`;
        const eject = document.createElement('button');
        eject.type = 'button';
        eject.textContent = 'Eject';
        eject.dataset.eject = d.drive;
        eject.onclick = () => this.command(d.drive, 'eject');
        li.append(name, what, eject);
      }
      return li;
    });
    this.list.replaceChildren(...items);
  }

  // A state note from polling replaces only an earlier note, never the outcome of an action,
  // which stays until the next action.
  note(text) {
    if (this.message.textContent === (this.noted || '') || !this.message.textContent) {
      this.message.textContent = text;
    }
    this.noted = text;
  }

  insertControls(drive) {
    const span = document.createElement('span');
    const names = this.diskNames();
    if (!names.length) return span;
    const sel = document.createElement('select');
    sel.setAttribute('aria-label', `Image for the ${label(drive).toLowerCase()}`);
    sel.append(...names.map((n) => new Option(n, n)));
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'Insert';
    b.onclick = async () => {
      this.message.textContent = await this.insertAndWait(drive, sel.value);
    };
    span.append(' ', sel, ' ', b);
    return span;
  }

  async command(drive, action, body = {}) {
    try {
      await this.api(`/api/drives/${drive}/${action}`, body);
      this.message.textContent = '';
      setTimeout(() => this.poll(), 300);
    } catch (e) {
      this.message.textContent = `${label(drive)}: ${e.message}`;
      this.log('error', `${action} ${drive}: ${e.message}`);
    }
  }

  // Inserts image `name` and waits for the emulator's next word on that drive: the disk in place,
  // or why it was refused (the report carries the reason; the API call only queues the command).
  async insertAndWait(drive, name) {
    const before = this.state.get(drive);
    try {
      await this.api(`/api/drives/${drive}/insert`, { file: name, read_only: false });
    } catch (e) {
      this.log('error', `insert ${drive}: ${e.message}`);
      return `${label(drive)}: ${e.message}`;
    }
    const start = Date.now();
    while (Date.now() - start < INSERT_WAIT_MS) {
      await new Promise((r) => setTimeout(r, 200));
      await this.poll();
      const d = this.state.get(drive);
      if (!d) continue;
      if (!d.empty && d.name === name) return `${name} inserted in the ${label(drive).toLowerCase()}.`;
      // A new reason, or the same one again once the emulator has had time to answer.
      const fresh = d.error && (!before || d.error !== before.error || Date.now() - start > 1500);
      if (d.empty && fresh) return `${name} was not inserted: ${d.error}`;
    }
    return `${name}: the emulator has not reported the ${label(drive).toLowerCase()} yet.`;
  }

  // The first empty drive fit for a file of `bytes`: a floppy for floppy-sized images, else SCSI.
  freeDrive(bytes) {
    const empty = [...this.state.values()].filter((d) => d.empty).map((d) => d.drive);
    const kind = bytes <= FLOPPY_MAX_BYTES ? 'floppy' : 'scsi';
    return empty.find((d) => d.startsWith(kind));
  }

  wireDrop() {
    const over = (e) => {
      if (![...e.dataTransfer.types].includes('Files')) return;
      e.preventDefault();
      this.drop.classList.add('dragging');
    };
    for (const t of [this.drop, document.body]) {
      t.addEventListener('dragover', over);
      t.addEventListener('dragleave', () => this.drop.classList.remove('dragging'));
      t.addEventListener('drop', (e) => {
        if (!e.dataTransfer.files.length) return;
        e.preventDefault();
        this.drop.classList.remove('dragging');
        this.upload(e.dataTransfer.files[0]);
      });
    }
    this.picker.addEventListener('change', () => {
      if (this.picker.files.length) this.upload(this.picker.files[0]);
      this.picker.value = '';
    });
  }

  async upload(file) {
    if (this.uploading) return;
    if (this.maxUpload && file.size > this.maxUpload) {
      this.message.textContent = `${file.name} is ${size(file.size)}; the server takes at most ${size(this.maxUpload)}.`;
      return;
    }
    this.uploading = true;
    try {
      await this.put(file);
      this.log('info', `uploaded ${file.name} (${size(file.size)})`);
      this.onUploaded();
      const drive = this.freeDrive(file.size);
      if (drive) {
        this.message.textContent = await this.insertAndWait(drive, file.name);
      } else {
        this.message.textContent = `${file.name} uploaded; no free drive for it (eject one, then insert it).`;
      }
    } catch (e) {
      this.message.textContent = `${file.name}: ${e.message}`;
      this.log('error', `upload ${file.name}: ${e.message}`);
    } finally {
      this.uploading = false;
    }
  }

  // XMLHttpRequest rather than fetch: it reports upload progress.
  put(file) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('PUT', new URL(`/api/disks/${encodeURIComponent(file.name)}`, location.href));
      this.authorize(xhr);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) this.message.textContent = `Uploading ${file.name}: ${Math.floor((100 * e.loaded) / e.total)} %`;
      };
      xhr.onload = () => {
        let json = null;
        try { json = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
        if (xhr.status >= 200 && xhr.status < 300) resolve(json);
        else reject(new Error((json && json.error) || `${xhr.status} ${xhr.statusText}`));
      };
      xhr.onerror = () => reject(new Error('the upload failed (connection lost)'));
      xhr.send(file);
    });
  }
}
