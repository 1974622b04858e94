-- What.CD Gazelle's shapes (WhatCD/Gazelle gazelle.sql) of the tables
-- Ocelot touches: the counters live in users_main and torrents, there are
-- no *_leech_stats tables, and every NOT NULL column the tracker does not
-- fill has a default.
CREATE DATABASE IF NOT EXISTS gazelle_classic CHARACTER SET utf8mb4;
USE gazelle_classic;
CREATE TABLE users_main (
  ID int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  torrent_pass char(32) NOT NULL,
  can_leech tinyint NOT NULL DEFAULT 1,
  Visible enum('1','0') NOT NULL DEFAULT '1',
  IP varchar(15) NOT NULL DEFAULT '0.0.0.0',
  Enabled enum('0','1','2') NOT NULL DEFAULT '0',
  Uploaded bigint unsigned NOT NULL DEFAULT 0,
  Downloaded bigint unsigned NOT NULL DEFAULT 0,
  KEY torrent_pass (torrent_pass)
) ENGINE=InnoDB;
CREATE TABLE torrents (
  ID int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  info_hash blob NOT NULL,
  FreeTorrent enum('0','1','2') NOT NULL DEFAULT '0',
  Size bigint NOT NULL DEFAULT 0,
  Seeders int NOT NULL DEFAULT 0,
  Leechers int NOT NULL DEFAULT 0,
  Snatched int unsigned NOT NULL DEFAULT 0,
  balance bigint NOT NULL DEFAULT 0,
  last_action datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  UNIQUE KEY InfoHash (info_hash(40))
) ENGINE=InnoDB;
CREATE TABLE users_freeleeches (
  UserID int NOT NULL,
  TorrentID int NOT NULL,
  Time datetime NOT NULL,
  Expired tinyint(1) NOT NULL DEFAULT 0,
  Downloaded bigint NOT NULL DEFAULT 0,
  Uses int NOT NULL DEFAULT 1,
  PRIMARY KEY (UserID, TorrentID)
) ENGINE=InnoDB;
CREATE TABLE xbt_client_whitelist (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  peer_id varchar(20) DEFAULT NULL,
  vstring varchar(200) DEFAULT '',
  UNIQUE KEY peer_id (peer_id)
) ENGINE=InnoDB;
CREATE TABLE xbt_files_users (
  uid int NOT NULL,
  active tinyint(1) NOT NULL DEFAULT 1,
  announced int NOT NULL DEFAULT 0,
  completed tinyint(1) NOT NULL DEFAULT 0,
  downloaded bigint NOT NULL DEFAULT 0,
  remaining bigint NOT NULL DEFAULT 0,
  uploaded bigint NOT NULL DEFAULT 0,
  upspeed int unsigned NOT NULL DEFAULT 0,
  downspeed int unsigned NOT NULL DEFAULT 0,
  corrupt bigint NOT NULL DEFAULT 0,
  timespent int unsigned NOT NULL DEFAULT 0,
  useragent varchar(51) NOT NULL DEFAULT '',
  connectable tinyint NOT NULL DEFAULT 1,
  peer_id binary(20) NOT NULL DEFAULT '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0',
  fid int NOT NULL,
  mtime int NOT NULL DEFAULT 0,
  ip varchar(15) NOT NULL DEFAULT '',
  PRIMARY KEY (peer_id, fid, uid),
  KEY mtime (mtime)
) ENGINE=InnoDB;
CREATE TABLE xbt_snatched (
  uid int NOT NULL DEFAULT 0,
  tstamp int NOT NULL,
  fid int NOT NULL,
  IP varchar(15) NOT NULL,
  KEY fid (fid),
  KEY tstamp (tstamp)
) ENGINE=InnoDB;
